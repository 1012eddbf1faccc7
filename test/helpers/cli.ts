import {spawnSync} from 'node:child_process';
import {existsSync, readdirSync, statSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = `${ROOT}bin/run.js`;
export const FIXTURES = `${ROOT}fixtures`;

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, {withFileTypes: true})) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

let checked = false;

/**
 * CLI tests run the built CLI (dist/): a missing or stale build fails them loudly instead of letting
 * them run old code or nothing at all. `npm test` builds first.
 */
export function requireBuiltCli(): string {
  if (checked) return BIN;
  // The CLI runs from the bundle (scripts/bundle.js), which is made after tsc: it is the last thing built.
  const built = path.join(ROOT, 'dist', 'bundle', 'ferry.cjs');
  for (const needed of [path.join(ROOT, 'dist', 'src', 'index.js'), built, path.join(ROOT, 'dist', 'bundle', 'worker.js'), path.join(ROOT, 'oclif.manifest.json')]) {
    if (!existsSync(needed)) throw new Error(`${path.relative(ROOT, needed)} is missing: the CLI tests run the built CLI; run \`npm run build\` first (npm test does)`);
  }
  const sources = Math.max(newestSource(path.join(ROOT, 'src')), newestSource(path.join(ROOT, 'commands')));
  if (sources > statSync(built).mtimeMs) throw new Error('dist/ is older than src/ or commands/: run `npm run build` first (npm test does)');
  checked = true;
  return BIN;
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

/** Runs the built CLI as a user would (node bin/run.js). */
export function ferry(args: string[], options: {input?: Buffer | string; env?: NodeJS.ProcessEnv; cwd?: string; timeout?: number} = {}): CliResult {
  const r = spawnSync(process.execPath, [requireBuiltCli(), ...args], {
    input: options.input ?? '',
    env: {...process.env, FERRY_DEBUG: '', ...options.env},
    cwd: options.cwd ?? ROOT,
    maxBuffer: 1 << 30,
    timeout: options.timeout ?? 120_000,
  });
  return {status: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), stdoutBytes: r.stdout};
}
