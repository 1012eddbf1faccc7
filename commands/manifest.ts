import {Flags} from '@oclif/core';
import {parsePlatform} from '../src/model/platform.js';
import {rawManifest} from '../src/ops/raw.js';
import {openArchive} from '../src/transports/table.js';
import {FerryCommand, sourceArg} from './base.js';
import {daemonFlags} from './daemon-flags.js';
import {registryFlags} from './registry-flags.js';

export default class Manifest extends FerryCommand {
  static override summary = 'Print the stored manifest (or index) of an image, byte for byte.';
  static override description = [
    'The bytes are exactly those the archive stores, so `sha256sum` of the output is the manifest digest (what',
    '`skopeo inspect --raw` prints for the same image). An index prints as the index; --platform picks one of its',
    'images. A legacy docker-archive (docker save up to Docker 24) stores no manifest: then the OCI manifest ferry',
    'writes for the image (ferry convert --compress keep) is printed, and a note on stderr says so.',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> manifest oci:./layout | jq .',
    '<%= config.bin %> manifest multi.tar --platform linux/arm64 | sha256sum',
    '<%= config.bin %> manifest --image app:1 all.tar',
  ];
  static override args = {
    source: sourceArg(),
  };
  static override flags = {
    ...daemonFlags,
    ...registryFlags,
    image: Flags.string({description: 'The image or index (name, image ID, manifest or index digest) when the archive holds several.'}),
    platform: Flags.string({description: 'Print the manifest of this os/arch[/variant] instead of the index.'}),
  };

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Manifest);
    const platform = flags.platform === undefined ? undefined : parsePlatform(flags.platform);
    const archive = await openArchive(args.source, {settings: this.settings, stdin: process.stdin});
    try {
      const doc = await rawManifest(archive, {images: flags.image === undefined ? [] : [flags.image], ...(platform ? {platform} : {}), note: (m) => this.note(m)});
      if (doc.note) this.note(doc.note);
      for (const w of archive.warnings) this.note(`warning: ${w}`);
      await this.writeStdout(doc.bytes);
    } finally {
      await archive.close();
    }
  }
}
