import {Args, Flags} from '@oclif/core';
import {UsageError} from '../src/errors.js';
import {parsePlatform} from '../src/model/platform.js';
import {describeDestination, humanSize} from '../src/ops/format.js';
import {archiveDestination, pullImages, type PullSummary} from '../src/ops/registry.js';
import {parseDestination} from '../src/transports/table.js';
import {compressFlags, compressOptions, FerryCommand} from './base.js';
import {daemonFlags} from './daemon-flags.js';
import {progressFor} from './progress.js';
import {registryFlags, transferFlags} from './registry-flags.js';

export default class Pull extends FerryCommand {
  static override summary = 'Pull images from a registry into one archive (docker-archive unless DEST names another form).';
  static override description = [
    'REF is a docker reference, with or without docker:// ([HOST[:PORT]/]REPO[:TAG|@DIGEST]; no host is docker.io, no tag is latest). Several REFs make one archive holding them all, each blob once.',
    'Manifests, indexes and configs are kept byte for byte, so the digests a registry served are the ones a push of the archive serves again; a form that cannot keep them is refused unless --manifest-format or --compress asks for the change. All platforms of an index are kept unless --platform picks some.',
    'Blobs are fetched beside DEST (.DEST.ferry-pull) and checked against their digests as they arrive: a pull that is killed continues from there when run again. Nothing is written at DEST until everything is checked.',
  ].join('\n\n');
  static override enableJsonFlag = true;
  static override strict = false;
  static override examples = [
    '<%= config.bin %> pull alpine:3.20 alpine.tar',
    '<%= config.bin %> pull registry.example:5000/app:1.2 registry.example:5000/db:5 oci-archive:bundle.tar',
    '<%= config.bin %> pull --platform linux/amd64 --platform linux/arm64 docker://ghcr.io/org/tool:v2 oci:./tool',
  ];
  static override args = {
    ref: Args.string({description: 'Image reference ([docker://][HOST[:PORT]/]REPO[:TAG|@DIGEST]); repeat for several', required: true}),
    destination: Args.string({description: 'PATH (a docker-archive), or docker-archive:PATH, oci-archive:PATH, oci:DIR (PATH - is stdout for the tar forms)', required: true}),
  };
  static override flags = {
    ...daemonFlags,
    ...registryFlags,
    ...transferFlags,
    platform: Flags.string({description: 'Keep only this os/arch[/variant] of multi-platform images (repeatable: a new index of those platforms).', multiple: true, multipleNonGreedy: true}),
    ...compressFlags('Layer compression: keep stores blobs as the registry served them.'),
    'docker-layout': Flags.string({description: 'docker-archive layout: oci (Docker 25+, keeps manifests) or legacy (Docker <=24, keeps none).', options: ['oci', 'legacy']}),
    force: Flags.boolean({description: 'Replace an existing destination.', default: false}),
  };

  async run(): Promise<PullSummary> {
    const {argv, flags} = await this.parse(Pull);
    const positional = argv as string[];
    if (positional.length < 2) throw new UsageError('expected REF... DEST: at least one image reference and a destination');
    const refs = positional.slice(0, -1);
    const destination = positional.at(-1)!;
    const json = this.jsonEnabled();
    const dest = parseDestination(archiveDestination(destination));
    if (json && dest.path === '-') throw new UsageError('--json prints to stdout, which already carries the archive (DEST -)');
    const summary = await pullImages(refs, destination, {
      platforms: (flags.platform ?? []).map(parsePlatform),
      ...compressOptions(flags),
      ...(flags['docker-layout'] ? {dockerLayout: flags['docker-layout'] as 'oci' | 'legacy'} : {}),
      ...(flags['manifest-format'] ? {manifestFormat: flags['manifest-format'] as 'oci' | 'docker'} : {}),
      ...(flags.report ? {report: flags.report} : {}),
      keepGoing: flags['keep-going'],
      referrers: flags.referrers,
      force: flags.force,
      note: (m) => this.note(m),
      progress: progressFor({quiet: flags.quiet, json}),
      settings: this.settings,
      stdout: process.stdout,
    });
    if (!json) {
      const onStdout = dest.path === '-';
      for (const item of summary.refs) if (item.error === undefined) this.result(`pulled ${item.ref} ${item.digest ?? ''}`.trimEnd(), onStdout);
      const t = summary.transfer;
      const moved = t ? ` (fetched ${humanSize(t.fetchedBytes)}${t.reusedBytes > 0 ? `, ${humanSize(t.reusedBytes)} already here` : ''})` : '';
      this.result(`wrote ${describeDestination(summary)}: ${summary.images} image(s), ${summary.blobs} blob(s), ${humanSize(summary.bytes)}${moved}`, onStdout);
    }
    this.failedSome(summary.refs);
    return summary;
  }
}
