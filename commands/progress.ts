import cliProgress from 'cli-progress';
import {silentProgress, type Progress} from '../src/ops/progress.js';

/**
 * A progress bar on stderr (bytes done/total, rate, ETA) — only when stderr is a TTY and the user did
 * not ask for --quiet or --json; otherwise nothing is drawn.
 */
export function progressFor(options: {quiet?: boolean; json?: boolean}): Progress {
  if (options.quiet || options.json || !process.stderr.isTTY || process.env.CI) return silentProgress;
  let bar: cliProgress.SingleBar | undefined;
  let done = 0;
  const format = (label: string): string => `${label.padEnd(12)} {bar} {percentage}% | {doneMiB}/{totalMiB} MiB | {rate} MiB/s | ETA {eta_formatted}`;
  const started = {at: 0};
  const payload = (total: number): Record<string, string> => {
    const seconds = Math.max(0.001, (Date.now() - started.at) / 1000);
    // A total that was an estimate never shows less than done.
    return {doneMiB: (done / 2 ** 20).toFixed(1), totalMiB: (Math.max(total, done) / 2 ** 20).toFixed(1), rate: (done / 2 ** 20 / seconds).toFixed(1)};
  };
  let total = 0;
  return {
    start(label, bytes) {
      bar?.stop();
      done = 0;
      total = bytes;
      started.at = Date.now();
      bar = new cliProgress.SingleBar({format: format(label), stream: process.stderr, hideCursor: true, clearOnComplete: true, etaBuffer: 50, fps: 8}, cliProgress.Presets.shades_classic);
      bar.start(Math.max(bytes, 1), 0, payload(total));
    },
    advance(bytes) {
      done += bytes;
      bar?.update(Math.min(done, Math.max(total, 1)), payload(total));
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}
