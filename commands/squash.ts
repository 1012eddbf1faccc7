import {Args, Flags} from '@oclif/core';
import {humanSize} from '../src/ops/format.js';
import {squashToArchive} from '../src/ops/squash.js';
import {openArchive, parseDestination} from '../src/transports/table.js';
import {parsePlatform} from '../src/model/platform.js';
import {compressFlags, compressOptions, FerryCommand, sourceArg} from './base.js';
import {daemonFlags} from './daemon-flags.js';
import {registryFlags} from './registry-flags.js';
import {progressFor} from './progress.js';

export default class Squash extends FerryCommand {
  static override summary = "Merge an image's layers (all, or from --from-layer N up) into one layer.";
  static override description = [
    'Layers are numbered from 0 at the base: --from-layer 2 keeps layers 0 and 1 byte for byte (same digests)',
    'and merges the rest into one layer that still hides, with whiteouts, the lower files they deleted.',
    'The config keeps every other setting; history marks the merged entries empty_layer and gains one line',
    'saying what was merged. A summary with the sizes before and after goes to stderr.',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> squash app.tar docker-archive:app-squashed.tar',
    '<%= config.bin %> squash app.tar oci:./app --from-layer 3 --tag app:slim',
  ];
  static override args = {
    source: sourceArg(),
    destination: Args.string({description: 'docker-archive:PATH, oci-archive:PATH, oci:DIR, docker://REF or docker-daemon:[NAME] (PATH - is stdout for the tar forms)', required: true}),
  };
  static override flags = {
    ...daemonFlags,
    ...registryFlags,
    'from-layer': Flags.integer({description: 'First layer to merge (0 = base, the default: merge all).', default: 0, min: 0}),
    image: Flags.string({description: 'The image to squash (name, image ID or manifest digest) when the archive holds several.'}),
    platform: Flags.string({description: 'The os/arch[/variant] of a multi-platform image (default: this machine\'s).'}),
    tag: Flags.string({description: 'Name the output image (repeatable); default: the source names.', multiple: true, multipleNonGreedy: true}),
    ...compressFlags('Layer compression of the output.'),
    'docker-layout': Flags.string({description: 'docker-archive layout: oci (Docker 25+: loads everywhere) or legacy (Docker <=24).', options: ['oci', 'legacy']}),
    force: Flags.boolean({description: 'Replace an existing destination.', default: false}),
  };

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Squash);
    parseDestination(args.destination); // a bad destination is a usage error before any work
    const compression = compressOptions(flags);
    const archive = await openArchive(args.source, {settings: this.settings, stdin: process.stdin});
    try {
      const summary = await squashToArchive(archive, args.destination, {
        images: flags.image === undefined ? [] : [flags.image],
        ...(flags.platform ? {platform: parsePlatform(flags.platform)} : {}),
        fromLayer: flags['from-layer'],
        ...(flags.tag ? {tags: flags.tag} : {}),
        ...compression,
        ...(flags['docker-layout'] ? {dockerLayout: flags['docker-layout'] as 'oci' | 'legacy'} : {}),
        force: flags.force,
        note: (m) => this.note(m),
        progress: progressFor({quiet: flags.quiet}),
        settings: this.settings,
        stdout: process.stdout,
      });
      for (const w of [...archive.warnings, ...archive.problems, ...summary.result.warnings]) this.note(`warning: ${w}`);
      const {fromLayer, squashed, beforeBytes, afterBytes} = summary.result;
      const saved = beforeBytes - afterBytes;
      const percent = beforeBytes > 0 ? ` (${((saved / beforeBytes) * 100).toFixed(1)}%)` : '';
      const range = squashed === 1 ? `layer ${fromLayer}` : `layers ${fromLayer}..${fromLayer + squashed - 1}`;
      this.result(
        `squashed ${range} of ${summary.image} (${squashed} layer(s), ${humanSize(beforeBytes)} uncompressed) into one layer of ${humanSize(afterBytes)}: ` +
          `${saved >= 0 ? `saved ${humanSize(saved)}${percent}` : `grew by ${humanSize(-saved)}`}; wrote ${summary.written.format}:${summary.written.path}`,
        summary.written.path === '-',
      );
    } finally {
      await archive.close();
    }
  }
}
