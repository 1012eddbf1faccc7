import {humanSize} from '../src/ops/format.js';
import {verifyArchive, type VerifyResult} from '../src/ops/verify.js';
import {openArchive} from '../src/transports/table.js';
import {FerryCommand, sourceArg} from './base.js';
import {daemonFlags} from './daemon-flags.js';
import {registryFlags} from './registry-flags.js';
import {progressFor} from './progress.js';

export default class Verify extends FerryCommand {
  static override summary = 'Check every digest, size and diffID in an archive, and that no layer escapes the image root.';
  static override enableJsonFlag = true;
  static override examples = ['<%= config.bin %> verify image.tar', '<%= config.bin %> verify --json oci:./layout'];
  static override args = {
    source: sourceArg(),
  };  static override flags = {
    ...daemonFlags,
    ...registryFlags,
  };


  async run(): Promise<VerifyResult & {format: string}> {
    const {args, flags} = await this.parse(Verify);
    const json = this.jsonEnabled();
    const archive = await openArchive(args.source, {settings: this.settings, stdin: process.stdin});
    try {
      const result = await verifyArchive(archive, {settings: this.settings, progress: progressFor({quiet: flags.quiet, json})});
      for (const n of result.notes) this.note(`note: ${n}`);
      if (!result.ok) {
        if (!json) for (const p of result.problems) process.stderr.write(`ferry: ${p}\n`);
        process.exitCode = 1;
      } else if (!json) process.stdout.write(`ok: ${result.images} image(s), ${result.layers} layer(s)${result.artifacts > 0 ? `, ${result.artifacts} artifact(s)` : ''}, ${humanSize(result.bytes)} verified\n`);
      return {format: archive.format, ...result};
    } finally {
      await archive.close();
    }
  }
}
