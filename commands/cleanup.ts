import {SIGNAL_EXIT} from '../src/errors.js';
import {removeAllPending} from '../src/io/fs/temp.js';

let installed = false;

/**
 * The CLI's signal handlers (idempotent): on SIGINT/SIGTERM/SIGHUP remove every pending temp path
 * (src/io/fs/temp.ts), print one line and exit 130/143/129. The library installs none: a process
 * embedding ferry owns its signals.
 */
export function installSignalCleanup(): void {
  if (installed) return;
  installed = true;
  for (const [signal, code] of Object.entries(SIGNAL_EXIT)) {
    process.on(signal, () => {
      removeAllPending();
      process.stderr.write(`ferry: interrupted by ${signal}\n`);
      process.exit(code);
    });
  }
}
