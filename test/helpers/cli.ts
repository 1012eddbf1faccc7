import {spawnSync} from 'node:child_process';
import {fileURLToPath} from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = `${ROOT}bin/run.js`;
export const FIXTURES = `${ROOT}fixtures`;

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

/** Runs the built CLI as a user would (node bin/run.js). */
export function ferry(args: string[], options: {input?: Buffer | string; env?: NodeJS.ProcessEnv; cwd?: string; timeout?: number} = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    input: options.input ?? '',
    env: {...process.env, FERRY_DEBUG: '', ...options.env},
    cwd: options.cwd ?? ROOT,
    maxBuffer: 1 << 30,
    timeout: options.timeout ?? 120_000,
  });
  return {status: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), stdoutBytes: r.stdout};
}
