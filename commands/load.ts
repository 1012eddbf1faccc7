import {Args, Flags} from '@oclif/core';
import {parsePlatform} from '../src/model/platform.js';
import {humanSize} from '../src/ops/format.js';
import {loadImages} from '../src/ops/daemon.js';
import type {WriteSummary} from '../src/ops/write-archive.js';
import {FerryCommand} from './base.js';
import {daemonFlags} from './daemon-flags.js';
import {progressFor} from './progress.js';
import {registryFlags} from './registry-flags.js';

export default class Load extends FerryCommand {
  static override summary = 'Load images into the docker daemon (or podman) from any form ferry reads.';
  static override description = [
    'SOURCE is any archive ferry reads (an OCI layout, an oci-archive, a zstd docker-archive docker cannot load itself) or a registry reference. The daemon gets what its version loads: the legacy layout for docker 24 and older, the OCI layout for docker 25+ and podman; layers it cannot read (zstd for docker before 23) are stored uncompressed, with a note.',
    'The archive is streamed to the daemon as it is made. If the daemon refuses it part way, names it had already loaded are removed again (or pointed back at what they named before).',
  ].join('\n\n');
  static override enableJsonFlag = true;
  static override examples = ['<%= config.bin %> load app.oci.tar', '<%= config.bin %> load oci:./layout --image app:1 --tag registry.local/app:1', '<%= config.bin %> load bundle.tar --podman'];
  static override args = {
    source: Args.string({description: 'What to load: PATH, -, docker-archive:|oci-archive:|oci:|rootfs:PATH, or docker://REF', required: true}),
  };
  static override flags = {
    ...daemonFlags,
    ...registryFlags,
    image: Flags.string({description: 'Load only images matching this name, image ID or manifest digest (repeatable; default all).', multiple: true, multipleNonGreedy: true}),
    tag: Flags.string({description: 'Add this name to the loaded image (repeatable; one image), as docker tag would.', multiple: true, multipleNonGreedy: true}),
    platform: Flags.string({description: 'Pick this os/arch[/variant] from multi-platform indexes (default: this machine\'s).'}),
  };

  async run(): Promise<WriteSummary> {
    const {args, flags} = await this.parse(Load);
    const json = this.jsonEnabled();
    const summary = await loadImages(args.source, {
      images: flags.image ?? [],
      tags: flags.tag ?? [],
      ...(flags.platform ? {platform: parsePlatform(flags.platform)} : {}),
      note: (m) => this.note(m),
      progress: progressFor({quiet: flags.quiet, json}),
      settings: this.settings,
      stdin: process.stdin,
    });
    if (!json) {
      for (const name of summary.loaded ?? []) this.result(`Loaded image${/^sha256:/.test(name) ? ' ID' : ''}: ${name}`, false);
      this.note(`sent ${humanSize(summary.bytes)} to the daemon`);
    }
    return summary;
  }
}
