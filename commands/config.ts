import {Flags} from '@oclif/core';
import {parsePlatform} from '../src/model/platform.js';
import {rawConfig} from '../src/ops/raw.js';
import {openArchive} from '../src/transports/table.js';
import {FerryCommand, sourceArg} from './base.js';
import {daemonFlags} from './daemon-flags.js';
import {registryFlags} from './registry-flags.js';

export default class Config extends FerryCommand {
  static override summary = 'Print the config of an image, byte for byte.';
  static override description = [
    'The bytes are exactly those the archive stores, so `sha256sum` of the output is the image ID (the config',
    'digest; what `skopeo inspect --raw --config` prints). From a multi-platform index, --platform picks the image',
    '(default: this machine\'s platform).',
  ].join('\n');
  static override examples = ['<%= config.bin %> config image.tar | jq .config.Env', '<%= config.bin %> config image.tar | sha256sum'];
  static override args = {
    source: sourceArg(),
  };
  static override flags = {
    ...daemonFlags,
    ...registryFlags,
    image: Flags.string({description: 'The image (name, image ID or manifest digest) when the archive holds several.'}),
    platform: Flags.string({description: 'Pick this os/arch[/variant] from a multi-platform index.'}),
  };

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Config);
    const platform = flags.platform === undefined ? undefined : parsePlatform(flags.platform);
    const archive = await openArchive(args.source, {settings: this.settings, stdin: process.stdin});
    try {
      const doc = await rawConfig(archive, {images: flags.image === undefined ? [] : [flags.image], ...(platform ? {platform} : {}), note: (m) => this.note(m)});
      for (const w of archive.warnings) this.note(`warning: ${w}`);
      await this.writeStdout(doc.bytes);
    } finally {
      await archive.close();
    }
  }
}
