import {Flags} from '@oclif/core';
import {inspectArchive, renderInspect, type InspectResult} from '../src/ops/inspect.js';
import {openArchive} from '../src/transports/table.js';
import {FerryCommand, sourceArg} from './base.js';
import {daemonFlags} from './daemon-flags.js';
import {registryFlags} from './registry-flags.js';

export default class Inspect extends FerryCommand {
  static override summary = 'Show the images in an archive: names, platform, IDs, config and layers.';
  static override description = 'Reads only small JSON members and tar headers, never layer bytes.';
  static override enableJsonFlag = true;
  static override examples = [
    '<%= config.bin %> inspect image.tar',
    '<%= config.bin %> inspect --json oci:./layout | jq -r ".images[].configDigest"',
    'docker save img | <%= config.bin %> inspect -',
  ];
  static override args = {
    source: sourceArg(),
  };
  static override flags = {
    ...daemonFlags,
    ...registryFlags,
    // Non-greedy: `--image a SOURCE` must leave SOURCE to the argument (repeat the flag for more).
    image: Flags.string({description: 'Only images matching this name, image ID or manifest digest (repeatable).', multiple: true, multipleNonGreedy: true}),
  };

  async run(): Promise<InspectResult> {
    const {args, flags} = await this.parse(Inspect);
    const archive = await openArchive(args.source, {settings: this.settings, stdin: process.stdin});
    try {
      const result = await inspectArchive(archive, flags.image ?? []);
      if (!this.jsonEnabled()) process.stdout.write(`${renderInspect(result, args.source)}\n`);
      for (const w of archive.warnings) this.note(`warning: ${w}`);
      return result;
    } finally {
      await archive.close();
    }
  }
}
