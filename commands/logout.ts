import {Args} from '@oclif/core';
import {logout} from '../src/ops/registry.js';
import {FerryCommand} from './base.js';
import {registryFromEnvironment} from './environment.js';

export default class Logout extends FerryCommand {
  static override summary = 'Log out of a registry: remove the credentials docker login stored for it.';
  static override examples = ['<%= config.bin %> logout registry.local:5000'];
  static override args = {
    host: Args.string({description: 'Registry host[:port]', required: true}),
  };

  async run(): Promise<void> {
    const {args} = await this.parse(Logout);
    // No registry flags here, but the same files as login: $DOCKER_CONFIG, not always ~/.docker.
    const removed = await logout(args.host, {settings: {...this.settings, registry: {...this.settings.registry, ...registryFromEnvironment(process.env)}}});
    this.result(removed ? `Removed login credentials for ${args.host}` : `Not logged in to ${args.host}`, false);
  }
}
