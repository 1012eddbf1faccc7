import cliProgress from 'cli-progress';
import {silentProgress, type Progress} from '../src/ops/progress.js';

/**
 * A progress bar on stderr (bytes done/total, rate, ETA) — only when stderr is a TTY and the user did
 * not ask for --quiet or --json; otherwise nothing is drawn.
 */
export function progressFor(options: {quiet?: boolean; json?: boolean}): Progress {
  if (options.quiet || options.json || !process.stderr.isTTY || process.env.CI) return silentProgress;
  let multi: cliProgress.MultiBar | undefined;
  let bar: cliProgress.SingleBar | undefined;
  let done = 0;
  const format = (label: string): string => `${label.padEnd(14)} {bar} {percentage}% | {doneMiB}/{totalMiB} MiB | {rate} MiB/s | ETA {eta_formatted}`;
  const started = {at: 0};
  const payload = (bytes: number, total: number, since: number): Record<string, string> => {
    const seconds = Math.max(0.001, (Date.now() - since) / 1000);
    // A total that was an estimate never shows less than done.
    return {doneMiB: (bytes / 2 ** 20).toFixed(1), totalMiB: (Math.max(total, bytes) / 2 ** 20).toFixed(1), rate: (bytes / 2 ** 20 / seconds).toFixed(1)};
  };
  let total = 0;
  return {
    start(label, bytes) {
      multi?.stop();
      done = 0;
      total = bytes;
      started.at = Date.now();
      multi = new cliProgress.MultiBar({format: format(label), stream: process.stderr, hideCursor: true, clearOnComplete: true, etaBuffer: 50, fps: 8}, cliProgress.Presets.shades_classic);
      bar = multi.create(Math.max(bytes, 1), 0, payload(0, total, started.at));
      multi.update(); // drawn at once: a MultiBar otherwise waits a frame, and a short phase never shows
    },
    advance(bytes) {
      done += bytes;
      bar?.update(Math.min(done, Math.max(total, 1)), payload(done, total, started.at));
    },
    stop() {
      multi?.stop();
      multi = undefined;
      bar = undefined;
    },
    // A bar per blob in flight under the phase's bar, gone when the blob is.
    blob(label, size) {
      const owner = multi;
      const since = Date.now();
      let got = 0;
      const line = owner?.create(Math.max(size, 1), 0, payload(0, size, since), {format: format(`  ${label}`)});
      return {
        advance(bytes) {
          got += bytes;
          line?.update(Math.min(got, Math.max(size, 1)), payload(got, size, since));
        },
        done() {
          if (line && owner && owner === multi) owner.remove(line);
        },
      };
    },
  };
}
