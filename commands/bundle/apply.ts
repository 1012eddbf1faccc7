import {Args} from '@oclif/core';
import {applyBundle, type BundleApplySummary} from '../../src/ops/bundle.js';
import {FerryCommand} from '../base.js';
import {daemonFlags} from '../daemon-flags.js';
import {progressFor} from '../progress.js';
import {chunkSizeFlag, registryFlags, transferFlags} from '../registry-flags.js';

export default class BundleApply extends FerryCommand {
  static override summary = 'Apply a bundle: push its images to a registry, load them into a daemon, or add them to an OCI layout.';
  static override description = [
    'TARGET is docker://HOST[:PORT][/PREFIX] (each image under PREFIX with its own repository path and tag, digests unchanged, blobs the registry has skipped, its manifest digest checked after), docker-daemon: (dockerd, or podman with --podman), or oci:DIR (added to the images it holds).',
    'A differential bundle (made with --have) fails before anything moves when the target lacks a blob it left out, naming them. Killed and run again, it redoes at most what was in flight.',
  ].join('\n\n');
  static override enableJsonFlag = true;
  static override examples = ['<%= config.bin %> bundle apply /media/usb/bundle docker://registry.local:5000/mirror', '<%= config.bin %> bundle apply ./bundle docker-daemon:'];
  static override args = {
    dir: Args.string({description: 'The bundle directory', required: true}),
    target: Args.string({description: 'docker://HOST[:PORT][/PREFIX], docker-daemon: or oci:DIR', required: true}),
  };
  static override flags = {
    'keep-going': transferFlags['keep-going'],
    report: transferFlags.report,
    ...chunkSizeFlag,
    ...daemonFlags,
    ...registryFlags,
  };

  async run(): Promise<BundleApplySummary> {
    const {args, flags} = await this.parse(BundleApply);
    const json = this.jsonEnabled();
    const summary = await applyBundle(args.dir, args.target, {
      keepGoing: flags['keep-going'],
      ...(flags.report ? {report: flags.report} : {}),
      note: (m) => this.note(m),
      progress: progressFor({quiet: flags.quiet, json}),
      settings: this.settings,
    });
    if (!json) for (const item of summary.refs) if (item.error === undefined) this.result(`applied ${item.ref} ${item.digest ?? ''}`.trimEnd(), false);
    this.failedSome(summary.refs);
    return summary;
  }
}
