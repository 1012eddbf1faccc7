import {Args, Flags} from '@oclif/core';
import {pipeline} from 'node:stream/promises';
import {ioError, UsageError} from '../src/errors.js';
import {parsePlatform} from '../src/model/platform.js';
import {catFile} from '../src/ops/cat.js';
import {decodeName} from '../src/tar/header.js';
import {openArchive} from '../src/transports/table.js';
import {FerryCommand, sourceArg} from './base.js';
import {daemonFlags} from './daemon-flags.js';
import {registryFlags} from './registry-flags.js';

export default class Cat extends FerryCommand {
  static override summary = 'Write one file of an image to stdout.';
  static override description =
    'Looks PATH up in the merged image (whiteouts applied), following symlinks inside the image root only (an absolute or ../ target never leaves it, as in a chroot) and hard links, then streams the bytes from the layer that holds them. A directory, a missing path or a device is an error.';
  static override examples = ['<%= config.bin %> cat image.tar /etc/os-release', '<%= config.bin %> cat --image app:1 all.tar /app/config.json | jq .'];
  static override args = {
    source: sourceArg(),
    path: Args.string({description: 'File inside the image (or give --path-base64)', required: false}),
  };
  static override flags = {
    ...daemonFlags,
    ...registryFlags,
    image: Flags.string({description: 'The image to read (name, image ID or manifest digest) when the archive holds several.'}),
    platform: Flags.string({description: 'The os/arch[/variant] to read from a multi-platform image (default: this machine\'s).'}),
    'path-base64': Flags.string({description: 'The path as base64 bytes (ls --json pathBytes), for names that are not UTF-8.'}),
  };

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Cat);
    if (args.path === undefined && flags['path-base64'] === undefined) throw new UsageError('name the file: PATH or --path-base64');
    if (args.path !== undefined && flags['path-base64'] !== undefined) throw new UsageError('give PATH or --path-base64, not both');
    if (args.source === '-' && args.path === '-') throw new UsageError('PATH is a file inside the image, not -');
    const filePath = args.path ?? decodeName(Buffer.from(flags['path-base64']!, 'base64'));
    const archive = await openArchive(args.source, {settings: this.settings, stdin: process.stdin});
    try {
      const result = await catFile(archive, filePath, {images: flags.image === undefined ? [] : [flags.image], note: (m) => this.note(m), ...(flags.platform ? {platform: parsePlatform(flags.platform)} : {})});
      await pipeline(result.stream, process.stdout, {end: false}).catch((e: unknown) => {
        throw ioError(e, 'stdout');
      });
      for (const w of [...archive.warnings, ...result.warnings]) this.note(`warning: ${w}`);
    } finally {
      await archive.close();
    }
  }
}
