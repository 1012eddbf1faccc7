import {Args, Flags} from '@oclif/core';
import {UsageError} from '../src/errors.js';
import {parsePlatform} from '../src/model/platform.js';
import {humanSize} from '../src/ops/format.js';
import {pushImages, type PushSummary} from '../src/ops/registry.js';
import {compressFlags, compressOptions, FerryCommand} from './base.js';
import {daemonFlags} from './daemon-flags.js';
import {progressFor} from './progress.js';
import {chunkSizeFlag, registryFlags, transferFlags} from './registry-flags.js';

export default class Push extends FerryCommand {
  static override summary = 'Push images from any archive (or registry) to a registry.';
  static override description = [
    'SOURCE is any form ferry reads; REF a docker reference, with or without docker://. The one image of SOURCE (or the one --image picks) goes to REF; with --all, every image goes under its own name below TARGET, a registry with an optional path: docker.io/library/alpine:3.20 pushed with --all to registry.local:5000/mirror becomes registry.local:5000/mirror/library/alpine:3.20.',
    'Manifests, indexes and configs keep their bytes, so the digests SOURCE names are the ones the registry serves. Blobs the registry has are skipped (HEAD), blobs pushed to one repository are mounted into the next, big blobs go up in chunks whose upload a rerun continues after a crash.',
    'Signatures and attestations stored beside an image travel with it: cosign\'s keep their sha256-HEX.sig tags, OCI 1.1 referrers are listed in the referrers tag where the registry has no referrers API.',
  ].join('\n\n');
  static override enableJsonFlag = true;
  static override strict = false;
  static override examples = [
    '<%= config.bin %> push alpine.tar registry.local:5000/library/alpine:3.20',
    '<%= config.bin %> push bundle.tar registry.local:5000/mirror --all',
    '<%= config.bin %> push oci:./layout docker://registry.local/app:1.2 --image app:1.2',
  ];
  static override args = {
    source: Args.string({description: 'What to push: PATH, -, docker-archive:|oci-archive:|oci:|rootfs:PATH, or docker://REF; repeat for several with --all', required: true}),
    ref: Args.string({description: 'Where: [docker://]HOST[:PORT]/REPO[:TAG|@DIGEST], or with --all HOST[:PORT][/PREFIX]', required: true}),
  };
  static override flags = {
    ...daemonFlags,
    ...registryFlags,
    ...transferFlags,
    ...chunkSizeFlag,
    image: Flags.string({description: 'Push only images matching this name, image ID or manifest digest (repeatable).', multiple: true, multipleNonGreedy: true}),
    all: Flags.boolean({description: 'Push every selected image under its own name below TARGET (a registry, optionally with a path).', default: false}),
    platform: Flags.string({description: 'Keep only this os/arch[/variant] of multi-platform images (repeatable); the index pushed is then a new one.', multiple: true, multipleNonGreedy: true}),
    ...compressFlags('Layer compression: keep pushes blobs as they are stored.'),
  };

  async run(): Promise<PushSummary> {
    const {argv, flags} = await this.parse(Push);
    const positional = argv as string[];
    if (positional.length < 2) throw new UsageError('expected SOURCE... REF: what to push and where');
    const json = this.jsonEnabled();
    const summary = await pushImages(positional.slice(0, -1), positional.at(-1)!, {
      images: flags.image ?? [],
      all: flags.all,
      platforms: (flags.platform ?? []).map(parsePlatform),
      ...compressOptions(flags),
      ...(flags['manifest-format'] ? {manifestFormat: flags['manifest-format'] as 'oci' | 'docker'} : {}),
      ...(flags.report ? {report: flags.report} : {}),
      keepGoing: flags['keep-going'],
      referrers: flags.referrers,
      note: (m) => this.note(m),
      progress: progressFor({quiet: flags.quiet, json}),
      settings: this.settings,
      stdin: process.stdin,
    });
    if (!json) {
      for (const item of summary.refs) if (item.error === undefined) this.result(`pushed ${item.ref} ${item.digest ?? ''}`.trimEnd(), false);
      const t = summary.transfer;
      this.result(`uploaded ${humanSize(t.uploadedBytes)} in ${t.uploaded} blob(s); ${humanSize(t.skippedBytes)} in ${t.skipped + t.mounted} blob(s) already there${t.mounted > 0 ? ` or mounted (${t.mounted})` : ''}${t.retries > 0 ? `; ${t.retries} retries` : ''}`, false);
    }
    this.failedSome(summary.refs);
    return summary;
  }
}
