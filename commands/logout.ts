import {Args} from '@oclif/core';
import {logout} from '../src/ops/registry.js';
import {FerryCommand} from './base.js';

export default class Logout extends FerryCommand {
  static override summary = 'Log out of a registry: remove the credentials docker login stored for it.';
  static override examples = ['<%= config.bin %> logout registry.local:5000'];
  static override args = {
    host: Args.string({description: 'Registry host[:port]', required: true}),
  };

  async run(): Promise<void> {
    const {args} = await this.parse(Logout);
    const removed = await logout(args.host, {settings: this.settings});
    this.result(removed ? `Removed login credentials for ${args.host}` : `Not logged in to ${args.host}`, false);
  }
}
