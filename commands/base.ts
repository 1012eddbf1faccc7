import {Args, Command, Errors, Flags, type Interfaces} from '@oclif/core';
import {describeError, EXIT_CODES, exitCodeFor, FerryError, ioError, printable} from '../src/errors.js';
import {checkCompressionLevel, COMPRESSION_LEVELS} from '../src/io/compress/encoder.js';
import {resolveSettings, type Settings} from '../src/settings.js';
import {installSignalCleanup} from './cleanup.js';
import type {DaemonFlagValues} from './daemon-flags.js';
import {daemonFromEnvironment, debugRequested, settingsFromEnvironment} from './environment.js';
import {registryOptions, type RegistryFlagValues} from './registry-flags.js';

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

// oclif's own constraints on parse() (lib/interfaces/parser.d.ts FlagOutput/ArgOutput, not exported):
// `any` because the override must accept exactly what Command.parse accepts.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type FlagOutput = {[name: string]: any};
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type ArgOutput = {[name: string]: any};

/** The SOURCE argument of every command that reads one image source (the forms of src/transports/table.ts). */
export const sourceArg = () =>
  Args.string({description: 'Archive: PATH, -, or docker-archive:|oci-archive:|oci:|rootfs:PATH, docker://REF or docker-daemon:NAME', required: true});

/**
 * --compress and --compress-level, the same on every command that writes layers (convert, squash,
 * import, push, pull, save); what --compress means there is its own description. The level is
 * checked against the compression in src/io/compress/encoder.ts.
 */
export const compressFlags = (description: string) => {
  const {gzip, zstd} = COMPRESSION_LEVELS;
  return {
    compress: Flags.string({description, options: ['keep', 'gzip', 'zstd', 'none'], default: 'keep'}),
    'compress-level': Flags.integer({description: `Level of the layers ferry compresses: gzip ${gzip.min}-${gzip.max} (default ${gzip.default}), zstd ${zstd.min}-${zstd.max} (default ${zstd.default}). Lower is faster and larger; another level gives other digests.`}),
  };
};

/** The write options of compressFlags; a level --compress cannot take is a usage error before any work. */
export function compressOptions(flags: {compress: string; 'compress-level'?: number | undefined}): {compress: 'keep' | 'gzip' | 'zstd' | 'none'; compressLevel?: number} {
  const compress = flags.compress as 'keep' | 'gzip' | 'zstd' | 'none';
  const level = flags['compress-level'];
  if (level === undefined) return {compress};
  checkCompressionLevel(compress, level);
  return {compress, compressLevel: level};
}

/**
 * skopeo users write `--tls-verify=false`; oclif's booleans take no value, so `--NAME=false|true` of
 * a boolean with a --no- form becomes `--no-NAME` / `--NAME` (before a `--`, nothing after it).
 */
function booleanValues(argv: readonly string[], flags: Record<string, {type?: string; allowNo?: boolean}>): string[] {
  const end = argv.indexOf('--');
  return argv.map((arg, i) => {
    if (end >= 0 && i > end) return arg;
    const m = /^--([a-z][a-z0-9-]*)=(true|false)$/.exec(arg);
    const flag = m ? flags[m[1]!] : undefined;
    if (!m || flag?.type !== 'boolean' || !flag.allowNo) return arg;
    return m[2] === 'true' ? `--${m[1]}` : `--no-${m[1]}`;
  });
}

/**
 * Every ferry command: settings from the environment (commands/environment.ts), errors as one
 * `ferry: …` line on stderr with the exit code of their error code (src/errors.ts EXIT_CODES; oclif's
 * own parse errors are usage errors, package.json oclif.exitCodes), stack traces only with
 * FERRY_DEBUG=1. stdout carries results only; with --json, a failure is a JSON document there too.
 */
export abstract class FerryCommand extends Command {
  static override baseFlags = {
    quiet: Flags.boolean({char: 'q', description: 'Print no progress or notes on stderr.', default: false}),
  };

  /** Library settings (limits, temp dir, workers) from FERRY_* variables. */
  protected settings!: Settings;
  #quiet = false;

  override async init(): Promise<void> {
    await super.init();
    this.argv = booleanValues(this.argv, (this.constructor as typeof Command).flags ?? {});
    installSignalCleanup();
    process.stdout.removeAllListeners('error');
    process.stdout.on('error', onStdoutError);
    process.once('exit', reportStdoutFailure);
    this.settings = resolveSettings(settingsFromEnvironment(process.env));
  }

  override async finally(error: Error | undefined): Promise<unknown> {
    reportStdoutFailure();
    return super.finally(error);
  }

  protected override async parse<F extends FlagOutput, B extends FlagOutput, A extends ArgOutput>(
    options?: Interfaces.Input<F, B, A>,
    argv?: string[],
  ): Promise<Interfaces.ParserOutput<F, B, A>> {
    const result = await super.parse(options, argv);
    this.#quiet = (result.flags as {quiet?: boolean}).quiet === true;
    // A command that spreads registryFlags reaches registries the way its flags and the environment say.
    if ('tls-verify' in result.flags) this.useRegistry(result.flags as unknown as RegistryFlagValues);
    if ('podman' in result.flags) this.settings = {...this.settings, daemon: daemonFromEnvironment(process.env, result.flags as unknown as DaemonFlagValues)};
    return result;
  }

  /** Registry flags (commands/registry-flags.ts) and the environment's credential files into this run's settings. */
  protected useRegistry(flags: RegistryFlagValues): void {
    this.settings = {...this.settings, registry: registryOptions(flags, process.env, (m) => this.note(m))};
  }

  /**
   * A run that did what it could but not everything (--keep-going): its results are printed, then one
   * line on stderr says what failed (even with --quiet) and the exit code is 1.
   */
  protected failedSome(items: ReadonlyArray<{ref: string; error?: string}>): void {
    const failed = items.filter((i) => i.error !== undefined);
    if (failed.length === 0) return;
    // Each failure was noted as it happened (and is in --report): this line names them once more.
    process.stderr.write(`ferry: ${printable(`${failed.length} of ${items.length} failed: ${failed.map((f) => f.ref).join(', ')}${this.#quiet ? ` (first: ${failed[0]!.error})` : ''}`)}\n`);
    process.exitCode = 1;
  }

  /** Writes a result's bytes to stdout; a reader that went away (`| head -c`) is its choice, any other failure an error. */
  protected async writeStdout(bytes: Uint8Array): Promise<void> {
    await new Promise<void>((resolve, reject) => process.stdout.write(bytes, (e) => (e && (e as NodeJS.ErrnoException).code !== 'EPIPE' ? reject(ioError(e, 'stdout')) : resolve())));
  }

  /** Notes and warnings go to stderr, never stdout; --quiet drops them. */
  protected note(message: string): void {
    if (!this.#quiet) process.stderr.write(`ferry: ${printable(message.replace(/\s*\n\s*/g, ' '))}\n`);
  }

  /**
   * A command's one-line result. The rule for every command: results on stdout, unless stdout
   * carries the archive (DEST -), in which case the line goes to stderr as a note.
   */
  protected result(line: string, stdoutCarriesArchive: boolean): void {
    if (stdoutCarriesArchive) this.note(line);
    else process.stdout.write(`${printable(line)}\n`);
  }

  /** oclif's colorizing tokenizer is quadratic on big documents (an `ls --json` of 100k paths): plain JSON. */
  override logJson(json: unknown): void {
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  }

  /** What --json prints when the command fails: `ok: false` and the error as the one problem. */
  override toErrorJson(error: unknown): unknown {
    const message = describeError(error);
    return {ok: false, error: {code: error instanceof FerryError ? error.code : 'ERROR', message}, problems: [message]};
  }

  protected override async catch(error: Error & {oclif?: {exit?: number}; exitCode?: number}): Promise<unknown> {
    // The error is the whole story: without this, oclif adds a "did not parse its arguments" warning
    // after a parse error when NODE_ENV is development or test.
    this.parsed = true;
    const oclifExit = error.oclif?.exit;
    // Every parse error is a usage error; some (an invalid option value) carry no exit code of their own.
    const code = error instanceof FerryError ? exitCodeFor(error) : error instanceof Errors.CLIError && error.constructor.name.endsWith('Error') && /Parse|Flag|Arg/.test(error.constructor.name) ? 2 : typeof oclifExit === 'number' ? oclifExit : 1;
    if (code === 0) return undefined; // oclif's exit(0) (help/version)
    const message = describeError(error);
    if (message === stdoutFailure) stdoutReported = true;
    // A command that ran and failed still answers --json with a document; a usage error ran nothing.
    if (this.jsonEnabled() && code !== EXIT_CODES.USAGE) this.logJson(this.toErrorJson(error));
    process.stderr.write(`ferry: ${message}\n`);
    if (debugRequested(process.env) && error.stack) process.stderr.write(`${error.stack}\n`);
    process.exitCode = code;
    return undefined;
  }
}
