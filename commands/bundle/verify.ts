import {Args} from '@oclif/core';
import {verifyBundle, type BundleVerifyResult} from '../../src/ops/bundle.js';
import {FerryCommand} from '../base.js';
import {progressFor} from '../progress.js';

export default class BundleVerify extends FerryCommand {
  static override summary = 'Check a bundle: every part against SHA256SUMS and bundle.json; which images are complete.';
  static override description = 'Parts may be missing (carried on several disks): each image is named complete or not, with the parts it lacks. Exit 1 when any image is incomplete or any part damaged.';
  static override enableJsonFlag = true;
  static override examples = ['<%= config.bin %> bundle verify ./bundle', '<%= config.bin %> bundle verify --json /media/usb/bundle | jq ".images[] | select(.complete | not)"'];
  static override args = {
    dir: Args.string({description: 'The bundle directory', required: true}),
  };

  async run(): Promise<BundleVerifyResult> {
    const {args, flags} = await this.parse(BundleVerify);
    const json = this.jsonEnabled();
    const result = await verifyBundle(args.dir, {settings: this.settings, progress: progressFor({quiet: flags.quiet, json})});
    if (!json) {
      for (const image of result.images) {
        const why = [...image.missing.map((p) => `${p} missing`), ...image.damaged.map((p) => `${p} damaged`)].join(', ');
        this.result(`${image.complete ? 'complete  ' : 'incomplete'} ${image.name ?? image.ref} ${image.digest}${why ? ` (${why})` : ''}`, false);
      }
      for (const problem of result.problems) process.stderr.write(`ferry: ${problem}\n`);
      const done = result.images.filter((i) => i.complete).length;
      this.result(`${result.ok ? 'ok' : 'FAILED'}: ${done} of ${result.images.length} image(s) complete, ${result.parts.filter((p) => p.ok).length} of ${result.parts.length} part(s) sound`, false);
    }
    if (!result.ok) process.exitCode = 1;
    return result;
  }
}
