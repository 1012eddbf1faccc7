import {Args, Flags} from '@oclif/core';
import {parsePlatform} from '../src/model/platform.js';
import {humanSize} from '../src/ops/format.js';
import {importRootfs} from '../src/ops/import.js';
import {parseDestination} from '../src/transports/table.js';
import {compressFlags, compressOptions, FerryCommand} from './base.js';
import {daemonFlags} from './daemon-flags.js';
import {registryFlags} from './registry-flags.js';

export default class Import extends FerryCommand {
  static override summary = 'Make a one-layer image from a rootfs tar, like docker import.';
  static override description = [
    'The layer is the tar exactly as given (decompressed first if it is gzip/bzip2/xz/zstd); the config is the one',
    'docker import writes, with --change settings applied in order. Supported --change instructions: CMD,',
    'ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL (Dockerfile syntax, JSON or shell form).',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> import rootfs.tar docker-archive:app.tar --tag app:1',
    `<%= config.bin %> import rootfs.tar.gz oci:./app --tag app:1 --change 'CMD ["/bin/app"]' --change 'ENV MODE=prod'`,
    'docker export $(docker create busybox) | <%= config.bin %> import - oci-archive:bb.tar --tag bb:flat --platform linux/amd64',
  ];
  static override args = {
    rootfs: Args.string({description: 'Rootfs tar (plain or compressed), or - for stdin', required: true}),
    destination: Args.string({description: 'docker-archive:PATH, oci-archive:PATH, oci:DIR, docker://REF or docker-daemon:[NAME] (PATH - is stdout for the tar forms)', required: true}),
  };
  static override flags = {
    ...daemonFlags,
    ...registryFlags,
    tag: Flags.string({description: 'Name of the image (repeatable).', multiple: true, multipleNonGreedy: true, required: true}),
    change: Flags.string({char: 'c', description: 'Apply a Dockerfile instruction to the config (repeatable).', multiple: true, multipleNonGreedy: true}),
    platform: Flags.string({description: 'os/arch[/variant] written in the config (default: linux and this machine\'s architecture).'}),
    message: Flags.string({char: 'm', description: 'History comment (default "Imported from -", as docker import writes).'}),
    ...compressFlags('Layer compression of the output.'),
    'docker-layout': Flags.string({description: 'docker-archive layout: oci (Docker 25+: loads everywhere) or legacy (Docker <=24).', options: ['oci', 'legacy']}),
    force: Flags.boolean({description: 'Replace an existing destination.', default: false}),
  };

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Import);
    const dest = parseDestination(args.destination);
    const platform = flags.platform === undefined ? undefined : parsePlatform(flags.platform);
    const summary = await importRootfs(args.rootfs, args.destination, {
      tags: flags.tag,
      changes: flags.change ?? [],
      ...(platform ? {platform} : {}),
      ...(flags.message === undefined ? {} : {message: flags.message}),
      ...compressOptions(flags),
      ...(flags['docker-layout'] ? {dockerLayout: flags['docker-layout'] as 'oci' | 'legacy'} : {}),
      force: flags.force,
      note: (m) => this.note(m),
      settings: this.settings,
      stdin: process.stdin,
      stdout: process.stdout,
    });
    const w = summary.written;
    this.result(`imported ${args.rootfs === '-' ? 'stdin' : args.rootfs} as ${flags.tag.join(', ')}: wrote ${w.format}:${dest.path === '-' ? 'stdout' : w.path} (${humanSize(w.bytes)})`, dest.path === '-');
  }
}
