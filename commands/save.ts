import {Args, Flags} from '@oclif/core';
import {UsageError} from '../src/errors.js';
import {describeDestination, humanSize} from '../src/ops/format.js';
import {saveImages} from '../src/ops/daemon.js';
import {archiveDestination} from '../src/ops/registry.js';
import type {WriteSummary} from '../src/ops/write-archive.js';
import {parseDestination} from '../src/transports/table.js';
import {compressFlags, compressOptions, FerryCommand} from './base.js';
import {daemonFlags} from './daemon-flags.js';
import {progressFor} from './progress.js';

export default class Save extends FerryCommand {
  static override summary = 'Save images from the docker daemon (or podman) into any form: docker save without the docker CLI.';
  static override description = 'DEST is a PATH (a docker-archive) or any destination form: oci-archive:PATH, oci:DIR, docker-archive:PATH with --compress zstd, docker://REF. The archive names exactly the names asked for, as docker save NAME does (an image asked for by ID is unnamed).';
  static override enableJsonFlag = true;
  static override strict = false;
  static override examples = ['<%= config.bin %> save app:1 app.tar', '<%= config.bin %> save app:1 db:5 oci-archive:stack.oci.tar --compress zstd', '<%= config.bin %> save --podman localhost/app:1 oci:./app'];
  static override args = {
    name: Args.string({description: 'Image name[:tag] or image ID in the daemon; repeat for several', required: true}),
    destination: Args.string({description: 'PATH (a docker-archive), or docker-archive:PATH, oci-archive:PATH, oci:DIR, docker://REF', required: true}),
  };
  static override flags = {
    ...daemonFlags,
    ...compressFlags('Layer compression of the archive.'),
    'docker-layout': Flags.string({description: 'docker-archive layout: oci (Docker 25+: loads everywhere) or legacy (Docker <=24).', options: ['oci', 'legacy']}),
    force: Flags.boolean({description: 'Replace an existing destination.', default: false}),
  };

  async run(): Promise<WriteSummary> {
    const {argv, flags} = await this.parse(Save);
    const positional = argv as string[];
    if (positional.length < 2) throw new UsageError('expected NAME... DEST: at least one image and a destination');
    const destination = positional.at(-1)!;
    const json = this.jsonEnabled();
    const dest = parseDestination(archiveDestination(destination));
    if (json && dest.path === '-') throw new UsageError('--json prints to stdout, which already carries the archive (DEST -)');
    const summary = await saveImages(positional.slice(0, -1), destination, {
      ...compressOptions(flags),
      ...(flags['docker-layout'] ? {dockerLayout: flags['docker-layout'] as 'oci' | 'legacy'} : {}),
      force: flags.force,
      note: (m) => this.note(m),
      progress: progressFor({quiet: flags.quiet, json}),
      settings: this.settings,
      stdout: process.stdout,
    });
    if (!json) this.result(`wrote ${describeDestination(summary)}: ${summary.images} image(s), ${summary.blobs} blob(s), ${humanSize(summary.bytes)}`, dest.path === '-');
    return summary;
  }
}
