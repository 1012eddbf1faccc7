import {readFile} from 'node:fs/promises';
import {Args, Flags} from '@oclif/core';
import {ioError, UsageError} from '../../src/errors.js';
import {parsePlatform} from '../../src/model/platform.js';
import {createBundle, parseRefList, type BundleSummary} from '../../src/ops/bundle.js';
import {humanSize, parseByteSize} from '../../src/ops/format.js';
import {FerryCommand} from '../base.js';
import {daemonFlags} from '../daemon-flags.js';
import {progressFor} from '../progress.js';
import {registryFlags} from '../registry-flags.js';

export default class BundleCreate extends FerryCommand {
  static override summary = 'Make an air-gap bundle: many images in parts that each load alone, pinned to their digests.';
  static override description = [
    'INPUT is an image in any form ferry reads: a registry reference (docker:// optional), docker-daemon:NAME, an archive or layout. -f LIST reads them from a file, one per line (# comments; name:tag@sha256:… pins).',
    'DIR receives bundle.json, SHA256SUMS (sha256sum -c checks it) and part-NNNN.tar files: each a docker-archive that docker load, ctr images import, k3s and ferry read alone. Images are packed whole where they fit; one bigger than --max-part-size spans parts. A blob needed in several parts is repeated in each (the summary says what that costs).',
    '--have FILE (ferry bundle inventory\'s output) leaves out the layers the far side already holds; manifests and configs always travel. The same inputs give the same bytes; a run that is killed continues when run again.',
  ].join('\n\n');
  static override enableJsonFlag = true;
  static override strict = false;
  static override examples = [
    '<%= config.bin %> bundle create alpine:3.20 registry.local/app:1.4 -o ./bundle --max-part-size 4.7GB',
    '<%= config.bin %> bundle create -f images.txt -o ./week-48 --have have.json --platform linux/amd64',
  ];
  static override args = {
    input: Args.string({description: 'Image to bundle (repeat for several): [docker://]REF, docker-daemon:NAME, PATH or FORM:PATH', required: false}),
  };
  static override flags = {
    output: Flags.string({char: 'o', description: 'Directory to write the bundle into.', required: true}),
    file: Flags.string({char: 'f', description: 'Read inputs from FILE, one per line (# starts a comment).'}),
    'max-part-size': Flags.string({description: 'Largest part: bytes or a size with a unit (700M, 4G, 4.7GB). Default: one part.'}),
    platform: Flags.string({description: 'Keep only this os/arch[/variant] of multi-platform images (repeatable).', multiple: true, multipleNonGreedy: true}),
    have: Flags.string({description: 'Leave out the blobs this have.json lists (ferry bundle inventory TARGET > have.json).'}),
    force: Flags.boolean({description: 'Replace a bundle already in DIR.', default: false}),
    ...daemonFlags,
    ...registryFlags,
  };

  async run(): Promise<BundleSummary> {
    const {argv, flags} = await this.parse(BundleCreate);
    const inputs = [...(argv as string[])];
    if (flags.file) inputs.push(...parseRefList(await readFile(flags.file, 'utf8').catch((e: unknown) => {
      throw ioError(e, flags.file!);
    })));
    if (inputs.length === 0) throw new UsageError('name the images to bundle (INPUT... or -f LIST)');
    let maxPartSize: number | undefined;
    if (flags['max-part-size'] !== undefined) {
      maxPartSize = parseByteSize(flags['max-part-size']);
      if (maxPartSize === undefined || maxPartSize < 1) throw new UsageError(`--max-part-size "${flags['max-part-size']}": expected a size such as 700M, 4G or 4.7GB`);
    }
    const json = this.jsonEnabled();
    const summary = await createBundle(inputs, flags.output, {
      ...(maxPartSize ? {maxPartSize} : {}),
      platforms: (flags.platform ?? []).map(parsePlatform),
      ...(flags.have ? {have: flags.have} : {}),
      force: flags.force,
      note: (m) => this.note(m),
      progress: progressFor({quiet: flags.quiet, json}),
      settings: this.settings,
    });
    if (!json) {
      for (const part of summary.parts) this.result(`${part.file}: ${humanSize(part.size)}, ${part.images.length > 0 ? part.images.join(', ') : 'layers of an image a later part completes'}`, false);
      this.result(`wrote ${summary.dir}: ${summary.images.length} image(s) in ${summary.parts.length} part(s), ${humanSize(summary.bytes)}${summary.repeated.blobs > 0 ? `; ${humanSize(summary.repeated.bytes)} repeated so each part stands alone` : ''}${summary.omitted.blobs > 0 ? `; ${humanSize(summary.omitted.bytes)} left out (--have)` : ''}`, false);
    }
    return summary;
  }
}
