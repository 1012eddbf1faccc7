import {randomBytes} from 'node:crypto';
import {rmSync} from 'node:fs';
import {mkdir} from 'node:fs/promises';
import path from 'node:path';
import {ioError} from '../../errors.js';

/**
 * Temp files and directories that must not outlive the process: removed by their owner when done,
 * and at exit. The CLI also removes them on SIGINT/SIGTERM/SIGHUP (commands/cleanup.ts) so Ctrl-C
 * never leaves a half-written archive; the library installs no signal handlers (a process embedding
 * ferry owns its signals) and offers `removeAllPending` for its own.
 */
const pending = new Set<string>();
let exitHookInstalled = false;

function removeNow(target: string): void {
  try {
    rmSync(target, {recursive: true, force: true});
  } catch {
    // best effort: nothing more can be done on the way out
  }
}

/** Removes every temp path still registered (what a signal handler calls before exiting). */
export function removeAllPending(): void {
  for (const target of pending) removeNow(target);
  pending.clear();
}

export function registerTemp(target: string): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', removeAllPending);
  }
  pending.add(target);
}

export function releaseTemp(target: string): void {
  pending.delete(target);
}

/** Removes and forgets a temp path. */
export function disposeTemp(target: string): void {
  removeNow(target);
  pending.delete(target);
}

/** A new private directory under `root`, registered for removal. */
export async function makeTempDir(root: string, prefix = 'ferry-'): Promise<string> {
  // Registered before it exists: a signal between creating and registering would leave it behind.
  for (;;) {
    const dir = path.join(root, `${prefix}${randomBytes(6).toString('hex')}`);
    registerTemp(dir);
    try {
      await mkdir(dir, {mode: 0o700});
      return dir;
    } catch (e) {
      releaseTemp(dir);
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(e, `temp dir in ${root}`);
    }
  }
}
