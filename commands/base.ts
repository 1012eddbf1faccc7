import {Command, Flags} from '@oclif/core';
import {describeError, exitCodeFor, FerryError, ioError, printable} from '../src/errors.js';
import {installCleanup} from '../src/io/cleanup.js';

/**
 * Every ferry command: errors become one `ferry: …` line on stderr and an exit code from
 * `exitCodeFor` (2 usage, 1 everything else, 130/143 signals); stack traces only with FERRY_DEBUG=1.
 * stdout carries results only.
 */
/**
 * A failed write to stdout (a full disk behind `> file`, /dev/full): oclif's own listener rethrows
 * it as an uncaught exception with a stack trace. Ours records it once, as one line: the command's
 * own error when it has one (a pipeline to stdout reports it), else on the way out. EPIPE (the
 * reader went away, `| head`) is the reader's choice, not a failure to report.
 */
let stdoutFailure: string | undefined;
let stdoutReported = false;

function onStdoutError(error: NodeJS.ErrnoException): void {
  if (error.code === 'EPIPE') return;
  stdoutFailure ??= describeError(ioError(error, 'stdout'));
  process.exitCode = 1;
}

function reportStdoutFailure(): void {
  if (stdoutFailure === undefined || stdoutReported) return;
  stdoutReported = true;
  process.stderr.write(`ferry: ${stdoutFailure}\n`);
  process.exitCode = 1;
}

export abstract class FerryCommand extends Command {
  static override baseFlags = {
    quiet: Flags.boolean({char: 'q', description: 'Print no progress or notes on stderr.', default: false}),
  };

  override async init(): Promise<void> {
    await super.init();
    installCleanup();
    process.stdout.removeAllListeners('error');
    process.stdout.on('error', onStdoutError);
    process.once('exit', reportStdoutFailure);
  }

  override async finally(error: Error | undefined): Promise<unknown> {
    reportStdoutFailure();
    return super.finally(error);
  }

  /** Notes and warnings go to stderr, never stdout. */
  protected note(message: string): void {
    if (!this.quietRequested()) process.stderr.write(`ferry: ${printable(message.replace(/\s*\n\s*/g, ' '))}\n`);
  }

  protected quietRequested(): boolean {
    return this.argv.includes('--quiet') || this.argv.includes('-q');
  }

  protected writeJson(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  protected override async catch(error: Error & {oclif?: {exit?: number}; exitCode?: number}): Promise<unknown> {
    // oclif's own parse errors (unknown flag, missing arg) carry exit 2: usage errors.
    const oclifExit = error.oclif?.exit;
    // The error is the whole story: without this, oclif adds a "did not parse its arguments" warning
    // to stderr after a parse error when NODE_ENV is development or test.
    this.parsed = true;
    const code = error instanceof FerryError ? exitCodeFor(error) : typeof oclifExit === 'number' ? (oclifExit === 2 || isParseError(error) ? 2 : oclifExit) : isParseError(error) ? 2 : 1;
    if (code === 0) return undefined; // oclif's exit(0) (help/version)
    const message = describeError(error);
    if (message === stdoutFailure) stdoutReported = true;
    process.stderr.write(`ferry: ${message}\n`);
    if (process.env.FERRY_DEBUG === '1' && error.stack) process.stderr.write(`${error.stack}\n`);
    process.exitCode = code;
    return undefined;
  }
}

function isParseError(error: Error): boolean {
  return /Parse|Flag|Arg|Missing|Unexpected|Nonexistent/.test(error.constructor?.name ?? '') || /^(Missing|Unexpected|Nonexistent|Expected)/.test(error.message);
}
