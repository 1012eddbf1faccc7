import {Args, Flags} from '@oclif/core';
import {inspectArchive, renderInspect} from '../src/ops/inspect.js';
import {openArchive} from '../src/transports.js';
import {FerryCommand} from './base.js';

export default class Inspect extends FerryCommand {
  static override summary = 'Show the images in an archive: names, platform, IDs, config and layers.';
  static override description = 'Reads only small JSON members and tar headers, never layer bytes.';
  static override examples = [
    '<%= config.bin %> inspect image.tar',
    '<%= config.bin %> inspect --json oci:./layout | jq -r ".images[].configDigest"',
    'docker save img | <%= config.bin %> inspect -',
  ];
  static override args = {
    source: Args.string({description: 'Archive: PATH, -, or docker-archive:|oci-archive:|oci:|rootfs:PATH', required: true}),
  };
  static override flags = {
    json: Flags.boolean({description: 'Print machine-readable JSON.', default: false}),
    // Non-greedy: `--image a SOURCE` must leave SOURCE to the argument (repeat the flag for more).
    image: Flags.string({description: 'Only images matching this name, image ID or manifest digest (repeatable).', multiple: true, multipleNonGreedy: true}),
  };

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Inspect);
    const archive = await openArchive(args.source);
    try {
      const result = inspectArchive(archive, flags.image ?? []);
      if (flags.json) this.writeJson(result);
      else process.stdout.write(`${renderInspect(result, args.source)}\n`);
      for (const w of archive.warnings) this.note(`warning: ${w}`);
    } finally {
      await archive.close();
    }
  }
}
