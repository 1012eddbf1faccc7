import {Args, Flags} from '@oclif/core';
import {UsageError} from '../src/errors.js';
import {login} from '../src/ops/registry.js';
import {FerryCommand} from './base.js';
import {registryFlags} from './registry-flags.js';
import {readSecretFromTerminal, readStdinText} from './terminal.js';

export default class Login extends FerryCommand {
  static override summary = 'Log in to a registry: check the credentials against it, then store them where docker login does.';
  static override description = 'The credentials go to the credential helper docker config.json names (credHelpers, credsStore), else into its auths ($DOCKER_CONFIG/config.json, else ~/.docker/config.json). No docker is needed.';
  static override examples = ['echo "$TOKEN" | <%= config.bin %> login registry.local:5000 -u ci --password-stdin', '<%= config.bin %> login registry.local:5000 --tls-verify=false -u admin'];
  static override args = {
    host: Args.string({description: 'Registry host[:port] (docker.io for Docker Hub)', required: true}),
  };
  static override flags = {
    username: Flags.string({char: 'u', description: 'User name (asked for on a terminal when missing).'}),
    password: Flags.string({char: 'p', description: 'Password (prefer --password-stdin: a flag shows in ps and shell history).'}),
    'password-stdin': Flags.boolean({description: 'Read the password from stdin.', default: false}),
    ...registryFlags,
  };

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Login);
    if (flags.password !== undefined && flags['password-stdin']) throw new UsageError('--password and --password-stdin are exclusive');
    const interactive = process.stdin.isTTY === true && process.stderr.isTTY === true;
    const username = flags.username ?? (interactive ? await readSecretFromTerminal('Username: ', false) : undefined);
    if (!username) throw new UsageError('no user name: pass -u USER');
    let password = flags.password;
    if (flags['password-stdin']) password = (await readStdinText(process.stdin)).replace(/\r?\n$/, '');
    else if (password === undefined && interactive) password = await readSecretFromTerminal('Password: ', true);
    if (!password) throw new UsageError('no password: pass --password-stdin (or -p)');
    if (flags.password !== undefined) this.note('a password given with -p shows in ps and shell history; --password-stdin does not');
    const result = await login(args.host, {username, password}, {settings: this.settings});
    this.note(`credentials stored in ${result.storedIn}`);
    this.result('Login Succeeded', false);
  }
}
