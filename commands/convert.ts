import {Args, Flags} from '@oclif/core';
import {UsageError} from '../src/errors.js';
import {parsePlatform} from '../src/model/platform.js';
import {convertArchive, type ConvertSummary} from '../src/ops/convert.js';
import {describeDestination, humanSize} from '../src/ops/format.js';
import {parseDestination} from '../src/transports/table.js';
import {compressFlags, compressOptions, FerryCommand} from './base.js';
import {daemonFlags} from './daemon-flags.js';
import {registryFlags, transferFlags} from './registry-flags.js';
import {progressFor} from './progress.js';

export default class Convert extends FerryCommand {
  static override summary = 'Convert images between docker-archive, oci-archive, OCI layout and registry forms.';
  static override description = [
    'Copies blobs byte for byte by default (image IDs and digests survive); recompressing keeps diffIDs.',
    'The default docker-archive output is an OCI layout with manifest.json beside it: docker (any version), containerd/ctr/k3s/kind, podman, skopeo and umoci all load it.',
    'The output is written under a temp name beside DEST and renamed at the end; an existing DEST is refused unless --force.',
  ].join('\n\n');
  static override enableJsonFlag = true;
  static override examples = [
    '<%= config.bin %> convert image.tar oci-archive:image.oci.tar',
    '<%= config.bin %> convert oci:./layout docker-archive:image.tar --tag registry.example/app:1.2',
    '<%= config.bin %> convert all.tar docker-archive:- --image app:1 --image db:5 > subset.tar',
    '<%= config.bin %> convert multi.tar oci:./arm --platform linux/arm64 --compress zstd',
    '<%= config.bin %> convert docker://registry.example/app:1.2 oci:./app',
  ];
  static override args = {
    source: Args.string({description: 'Archive to read: PATH, -, or docker-archive:|oci-archive:|oci:|rootfs:PATH, docker://REF or docker-daemon:NAME', required: true}),
    destination: Args.string({description: 'docker-archive:PATH, oci-archive:PATH, oci:DIR, docker://REF or docker-daemon:[NAME] (PATH - is stdout for the tar forms)', required: true}),
  };
  static override flags = {
    ...daemonFlags,
    ...registryFlags,
    image: Flags.string({description: 'Convert only images matching this name, image ID or manifest digest (repeatable; default all).', multiple: true, multipleNonGreedy: true}),
    tag: Flags.string({description: 'Name the output image (repeatable; only when one image is converted). Replaces its names.', multiple: true, multipleNonGreedy: true}),
    ...compressFlags('Layer compression: keep copies blobs as they are where the destination loads them.'),
    platform: Flags.string({description: 'Pick this os/arch[/variant] from multi-platform indexes (repeatable: a new index of those platforms).', multiple: true, multipleNonGreedy: true}),
    'manifest-format': transferFlags['manifest-format'],
    referrers: transferFlags.referrers,
    'docker-layout': Flags.string({description: 'docker-archive layout: oci (Docker 25+: loads everywhere) or legacy (Docker <=24).', options: ['oci', 'legacy']}),
    force: Flags.boolean({description: 'Replace an existing destination.', default: false}),
  };

  async run(): Promise<ConvertSummary> {
    const {args, flags} = await this.parse(Convert);
    const json = this.jsonEnabled();
    const dest = parseDestination(args.destination);
    if (json && dest.path === '-') throw new UsageError('--json prints to stdout, which already carries the archive (DEST -)');
    const platforms = (flags.platform ?? []).map(parsePlatform);
    const summary = await convertArchive(args.source, args.destination, {
      images: flags.image ?? [],
      ...(flags.tag ? {tags: flags.tag} : {}),
      ...compressOptions(flags),
      ...(flags['docker-layout'] ? {dockerLayout: flags['docker-layout'] as 'oci' | 'legacy'} : {}),
      platforms,
      ...(flags['manifest-format'] ? {manifestFormat: flags['manifest-format'] as 'oci' | 'docker'} : {}),
      referrers: flags.referrers,
      force: flags.force,
      note: (m) => this.note(m),
      progress: progressFor({quiet: flags.quiet, json}),
      settings: this.settings,
      stdin: process.stdin,
      stdout: process.stdout,
    });
    if (!json) this.result(`wrote ${describeDestination(summary)}: ${summary.images} image(s), ${summary.blobs} blob(s), ${humanSize(summary.bytes)}`, dest.path === '-');
    return summary;
  }
}
