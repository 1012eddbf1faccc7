import {Args, Flags} from '@oclif/core';
import {humanSize} from '../src/ops/inspect.js';
import {verifyArchive} from '../src/ops/verify.js';
import {openArchive} from '../src/transports.js';
import {FerryCommand} from './base.js';
import {progressFor} from './progress.js';

export default class Verify extends FerryCommand {
  static override summary = 'Check every digest, size and diffID in an archive, and that no layer escapes the image root.';
  static override examples = ['<%= config.bin %> verify image.tar', '<%= config.bin %> verify --json oci:./layout'];
  static override args = {
    source: Args.string({description: 'Archive: PATH, -, or docker-archive:|oci-archive:|oci:|rootfs:PATH', required: true}),
  };
  static override flags = {
    json: Flags.boolean({description: 'Print machine-readable JSON.', default: false}),
  };

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Verify);
    const archive = await openArchive(args.source);
    try {
      const result = await verifyArchive(archive, {progress: progressFor({quiet: flags.quiet, json: flags.json})});
      if (flags.json) this.writeJson({format: archive.format, ...result});
      if (!result.ok) {
        if (!flags.json) for (const p of result.problems) process.stderr.write(`ferry: ${p}\n`);
        process.exitCode = 1;
        return;
      }
      if (!flags.json) process.stdout.write(`ok: ${result.images} image(s), ${result.layers} layer(s), ${humanSize(result.bytes)} verified\n`);
    } finally {
      await archive.close();
    }
  }
}
