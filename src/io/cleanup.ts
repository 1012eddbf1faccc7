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

/**
 * Installs the exit and signal handlers (idempotent). The CLI calls it at start, so a Ctrl-C that
 * comes before the first temp file still exits 130/143 with one line, not a bare signal death.
 */
export function installCleanup(): void {
  install();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', removeAllPending);
  for (const [signal, code] of Object.entries(SIGNALS)) {
    process.on(signal, () => {
      removeAllPending();
      process.stderr.write(`ferry: interrupted by ${signal}\n`);
      process.exit(code);
    });
  }
}

export function registerTemp(path: string): void {
  install();
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
