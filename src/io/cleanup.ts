import {rmSync} from 'node:fs';

/**
 * Temp files and directories that must not outlive the process: removed when their owner is done,
 * and on SIGINT/SIGTERM/SIGHUP or exit, so Ctrl-C never leaves a half-written archive behind.
 */
const pending = new Set<string>();
let installed = false;
const SIGNALS: Record<string, number> = {SIGINT: 130, SIGTERM: 143, SIGHUP: 129};

export function removeNow(path: string): void {
  try {
    rmSync(path, {recursive: true, force: true});
  } catch {
    // best effort: nothing more can be done on the way out
  }
}

export function removeAllPending(): void {
  for (const path of pending) removeNow(path);
  pending.clear();
}

let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', removeAllPending);
}

/**
 * Installs the signal handlers (idempotent): on SIGINT/SIGTERM/SIGHUP, remove every pending temp path,
 * print one line and exit 130/143/129. The CLI calls it at start, so a Ctrl-C that comes before the
 * first temp file still exits with one line. Library code never installs them by itself (a process
 * embedding ferry owns its signals); it only registers temps, removed at exit or by their owner.
 */
export function installCleanup(): void {
  installExitHook();
  if (installed) return;
  installed = true;
  for (const [signal, code] of Object.entries(SIGNALS)) {
    process.on(signal, () => {
      removeAllPending();
      process.stderr.write(`ferry: interrupted by ${signal}\n`);
      process.exit(code);
    });
  }
}

export function registerTemp(path: string): void {
  installExitHook();
  pending.add(path);
}

export function releaseTemp(path: string): void {
  pending.delete(path);
}

/** Removes and forgets a temp path. */
export function disposeTemp(path: string): void {
  removeNow(path);
  pending.delete(path);
}
