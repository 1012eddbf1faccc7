import {Args, Flags} from '@oclif/core';
import {inventory, type Inventory} from '../../src/ops/bundle.js';
import {FerryCommand} from '../base.js';
import {daemonFlags} from '../daemon-flags.js';
import {registryFlags} from '../registry-flags.js';

export default class BundleInventory extends FerryCommand {
  static override summary = 'List the blobs a target already holds, for bundle create --have.';
  static override description = 'TARGET is a registry (docker://HOST[:PORT][/PREFIX]: its catalog below PREFIX, or the --repository list when the catalog is closed), a bundle directory or a directory of bundles (the parts present), a bundle.json, or any archive ferry reads. Prints JSON: {"schemaVersion": 1, "target", "blobs": {DIGEST: {"size", "repositories"}}}.';
  static override examples = ['<%= config.bin %> bundle inventory docker://registry.local:5000/mirror > have.json', '<%= config.bin %> bundle inventory /media/usb/bundles > have.json'];
  static override args = {
    target: Args.string({description: 'docker://HOST[:PORT][/PREFIX], a bundle directory (or a directory of them), a bundle.json, or an archive', required: true}),
  };
  static override flags = {
    repository: Flags.string({description: 'A repository to list (repeatable; instead of walking the catalog).', multiple: true, multipleNonGreedy: true}),
    ...daemonFlags,
    ...registryFlags,
  };

  async run(): Promise<Inventory> {
    const {args, flags} = await this.parse(BundleInventory);
    const result = await inventory(args.target, {...(flags.repository ? {repositories: flags.repository} : {}), settings: this.settings, note: (m) => this.note(m)});
    this.logJson(result);
    return result;
  }
}
