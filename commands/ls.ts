import {Args, Flags} from '@oclif/core';
import {listImage, renderListing, type ListedEntry} from '../src/ops/ls.js';
import {openArchive} from '../src/transports/table.js';
import {parsePlatform} from '../src/model/platform.js';
import {FerryCommand, sourceArg} from './base.js';
import {daemonFlags} from './daemon-flags.js';
import {registryFlags} from './registry-flags.js';

export default class Ls extends FerryCommand {
  static override summary = "List an image's merged file tree, or what one layer changes.";
  static override description = [
    'Without --layer: every path of the image as a container would see it (whiteouts applied), below PATH',
    'when given. With --layer N (0 = base): that layer\'s own entries, marked A (added), C (changes a path',
    'of the layers below) or D (a whiteout or opaque marker deleting lower paths). Reads tar headers only.',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> ls image.tar',
    '<%= config.bin %> ls --long image.tar /etc',
    '<%= config.bin %> ls --layer 2 oci:./layout',
    '<%= config.bin %> ls --json image.tar /usr/bin | jq -r ".[].path"',
  ];
  static override args = {
    source: sourceArg(),
    path: Args.string({description: 'Only this path (and what is below it)', required: false}),
  };
  static override flags = {
    ...daemonFlags,
    ...registryFlags,
    image: Flags.string({description: 'The image to list (name, image ID or manifest digest) when the archive holds several.'}),
    platform: Flags.string({description: 'The os/arch[/variant] of a multi-platform image (default: this machine\'s).'}),
    layer: Flags.integer({description: "List this layer's own changes (0 = base).", min: 0}),
    long: Flags.boolean({char: 'l', description: 'Show type, mode, owner, size, mtime and the layer each path comes from.', default: false}),
  };
  static override enableJsonFlag = true;

  async run(): Promise<ListedEntry[]> {
    const {args, flags} = await this.parse(Ls);
    const archive = await openArchive(args.source, {settings: this.settings, stdin: process.stdin});
    try {
      const listing = await listImage(archive, args.path, {images: flags.image === undefined ? [] : [flags.image], ...(flags.layer === undefined ? {} : {layer: flags.layer}), ...(flags.platform ? {platform: parsePlatform(flags.platform)} : {}), note: (m) => this.note(m)});
      if (!this.jsonEnabled() && listing.entries.length > 0) process.stdout.write(`${renderListing(listing.entries, {long: flags.long, changes: flags.layer !== undefined})}\n`);
      for (const w of [...archive.warnings, ...listing.warnings]) this.note(`warning: ${w}`);
      return listing.entries;
    } finally {
      await archive.close();
    }
  }
}
