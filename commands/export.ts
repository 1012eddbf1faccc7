import {Args, Flags} from '@oclif/core';
import {exportImage} from '../src/ops/flatten.js';
import {humanSize} from '../src/ops/format.js';
import {openArchive} from '../src/transports/table.js';
import {parsePlatform} from '../src/model/platform.js';
import {FerryCommand, sourceArg} from './base.js';
import {daemonFlags} from './daemon-flags.js';
import {registryFlags} from './registry-flags.js';
import {progressFor} from './progress.js';

export default class Export extends FerryCommand {
  static override summary = "Write an image's flattened file system as one tar, like docker export, without running anything.";
  static override description =
    'Applies the layers the way Docker does (whiteouts, opaque directories, hard links) from their tar headers, then streams each file from the layer that holds it. No whiteout files in the output; the same image always gives the same bytes.';
  static override examples = [
    '<%= config.bin %> export image.tar rootfs.tar',
    '<%= config.bin %> export --image app:1 oci:./layout - | tar -t',
  ];
  static override args = {
    source: sourceArg(),
    destination: Args.string({description: 'Tar file to write, or - for stdout', required: true}),
  };
  static override flags = {
    ...daemonFlags,
    ...registryFlags,
    image: Flags.string({description: 'The image to export (name, image ID or manifest digest) when the archive holds several.'}),
    platform: Flags.string({description: 'The os/arch[/variant] of a multi-platform image (default: this machine\'s).'}),
    force: Flags.boolean({description: 'Replace DESTINATION if it exists.', default: false}),
  };

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Export);
    const archive = await openArchive(args.source, {settings: this.settings, stdin: process.stdin});
    try {
      const summary = await exportImage(archive, args.destination, {
        images: flags.image === undefined ? [] : [flags.image],
        ...(flags.platform ? {platform: parsePlatform(flags.platform)} : {}),
        force: flags.force,
        progress: progressFor({quiet: flags.quiet}),
        settings: this.settings,
        stdout: process.stdout,
        note: (m) => this.note(m),
      });
      for (const w of [...archive.warnings, ...archive.problems, ...summary.warnings]) this.note(`warning: ${w}`);
      this.result(`exported ${summary.image}: ${summary.entries} entries (${summary.files} files), ${humanSize(summary.bytes)}${args.destination === '-' ? '' : ` to ${args.destination}`}`, args.destination === '-');
    } finally {
      await archive.close();
    }
  }
}
