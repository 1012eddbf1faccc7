import {execFileSync, spawnSync} from 'node:child_process';

/**
 * Real peer tools (skopeo, umoci, docker…). Outside CI a missing peer skips its tests with
 * "skipped: <tool> not installed"; under CI=true a missing peer fails them.
 */
export function hasTool(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], {stdio: 'ignore'}).status === 0;
}

export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

/**
 * Returns a reason to skip (outside CI) or throws (in CI) when any tool is missing; undefined when
 * all are present. Use as: `describe.skipIf(peerMissing('skopeo'))(...)` — vitest prints the skip.
 */
export function peerMissing(...tools: string[]): boolean {
  const missing = tools.filter((t) => !hasTool(t));
  if (missing.length === 0) return false;
  if (IN_CI) throw new Error(`CI=true but required peer(s) not installed: ${missing.join(', ')}`);
  console.warn(`skipped: ${missing.join(', ')} not installed`);
  return true;
}

export function run(cmd: string, args: string[], options: {input?: Buffer | string; env?: NodeJS.ProcessEnv; cwd?: string} = {}): string {
  return execFileSync(cmd, args, {encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'pipe'], ...options});
}

export function runJson<T = unknown>(cmd: string, args: string[]): T {
  return JSON.parse(run(cmd, args)) as T;
}

/**
 * Whether assertions that need root (xattrs in security.*, uids above 2^21, tmpfs mounts) can run:
 * outside CI a non-root run says so and skips them; in CI they must run, so a non-root CI fails.
 */
export function runsAsRoot(what: string): boolean {
  if (process.getuid?.() === 0) return true;
  if (IN_CI) throw new Error(`CI=true but not running as root: ${what} needs root`);
  console.warn(`skipped: ${what} (not root)`);
  return false;
}
