import {Args} from '@oclif/core';
import {listTags} from '../src/ops/registry.js';
import {FerryCommand} from './base.js';
import {registryFlags} from './registry-flags.js';

export default class Tags extends FerryCommand {
  static override summary = 'List the tags of a repository in a registry (like crane ls, skopeo list-tags).';
  static override enableJsonFlag = true;
  static override examples = ['<%= config.bin %> tags registry.local:5000/library/alpine', '<%= config.bin %> tags --json docker://ghcr.io/org/tool | jq -r ".tags[]"'];
  static override args = {
    repository: Args.string({description: '[docker://][HOST[:PORT]/]REPO, without a tag', required: true}),
  };
  static override flags = {
    ...registryFlags,
  };

  async run(): Promise<{repository: string; tags: string[]}> {
    const {args} = await this.parse(Tags);
    const result = await listTags(args.repository, {settings: this.settings});
    if (!this.jsonEnabled()) for (const tag of result.tags) this.result(tag, false);
    return result;
  }
}
