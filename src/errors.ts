/**
 * One error family for the whole library. Library code throws these and never prints; the exit code
 * of each is looked up by its code in one table (`EXIT_CODES`), which the CLI applies.
 */
export type FerryErrorCode =
  | 'USAGE'
  | 'NOT_FOUND'
  | 'UNKNOWN_FORMAT'
  | 'BAD_ARCHIVE'
  | 'BAD_JSON'
  | 'BAD_TAR'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'MISSING_BLOB'
  | 'UNSAFE_PATH'
  | 'LIMIT_EXCEEDED'
  | 'UNSUPPORTED'
  | 'EXISTS'
  | 'IO'
  | 'INTERRUPTED'
  | 'VERIFY_FAILED'
  | 'AUTH'
  | 'REGISTRY'
  | 'DAEMON';

export class FerryError extends Error {
  override name = 'FerryError';
  readonly code: FerryErrorCode;
  constructor(code: FerryErrorCode, message: string, options?: {cause?: unknown}) {
    super(message, options);
    this.code = code;
  }
}

/** Bad flags, arguments or transport names: exit 2. */
export class UsageError extends FerryError {
  override name = 'UsageError';
  constructor(message: string, options?: {cause?: unknown}) {
    super('USAGE', message, options);
  }
}

/** Both sides of a mismatch are named, as go-containerregistry's validate does. */
export class DigestMismatchError extends FerryError {
  override name = 'DigestMismatchError';
  constructor(
    readonly what: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super('DIGEST_MISMATCH', `${what}: digest mismatch: expected ${expected}, got ${actual}`);
  }
}

export class SizeMismatchError extends FerryError {
  override name = 'SizeMismatchError';
  constructor(
    readonly what: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super('SIZE_MISMATCH', `${what}: size mismatch: expected ${expected} bytes, got ${actual}`);
  }
}

/** Bytes after the end of a compressed stream: node reads past them, docker, podman and skopeo refuse them. */
export class TrailingDataError extends FerryError {
  override name = 'TrailingDataError';
  constructor(message: string) {
    super('BAD_ARCHIVE', message);
  }
}

/** A signal stopped the work; exit 128 + signal number, as shells report it. */
export class InterruptedError extends FerryError {
  override name = 'InterruptedError';
  constructor(readonly signal: NodeJS.Signals) {
    super('INTERRUPTED', `interrupted by ${signal}`);
  }
}

/** Exit codes by error code: usage errors 2, signals as shells report them, everything else 1. */
export const EXIT_CODES: Readonly<Record<FerryErrorCode, number>> = {
  USAGE: 2,
  INTERRUPTED: 130,
  NOT_FOUND: 1,
  UNKNOWN_FORMAT: 1,
  BAD_ARCHIVE: 1,
  BAD_JSON: 1,
  BAD_TAR: 1,
  DIGEST_MISMATCH: 1,
  SIZE_MISMATCH: 1,
  MISSING_BLOB: 1,
  UNSAFE_PATH: 1,
  LIMIT_EXCEEDED: 1,
  UNSUPPORTED: 1,
  EXISTS: 1,
  IO: 1,
  VERIFY_FAILED: 1,
  AUTH: 1,
  REGISTRY: 1,
  DAEMON: 1,
};

/** 128 + signal number, as shells report a process a signal stopped. */
export const SIGNAL_EXIT: Readonly<Partial<Record<NodeJS.Signals, number>>> = {SIGINT: 130, SIGTERM: 143, SIGHUP: 129};

/** The exit code for anything thrown: a FerryError's code in EXIT_CODES, 1 for anything else. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof InterruptedError) return SIGNAL_EXIT[error.signal] ?? EXIT_CODES.INTERRUPTED;
  if (error instanceof FerryError) return EXIT_CODES[error.code];
  return 1;
}

/** Wraps a Node system error (ENOENT, ENOSPC, EACCES…) as a FerryError naming the path. */
export function ioError(error: unknown, what: string): FerryError {
  if (error instanceof FerryError) return error;
  const e = error as NodeJS.ErrnoException;
  if (e && typeof e === 'object' && typeof e.code === 'string') {
    const reason =
      e.code === 'ENOENT'
        ? 'no such file or directory'
        : e.code === 'ENOSPC'
          ? 'no space left on device'
          : e.code === 'EACCES' || e.code === 'EPERM'
            ? 'permission denied'
            : e.code === 'EISDIR'
              ? 'is a directory'
              : e.code === 'ENOTDIR'
                ? 'not a directory'
                : e.code === 'EEXIST'
                  ? 'already exists'
                  : e.code === 'EPIPE'
                    ? 'broken pipe'
                    : e.message;
    return new FerryError(e.code === 'ENOENT' ? 'NOT_FOUND' : 'IO', `${what}: ${reason}`, {cause: error});
  }
  return new FerryError('IO', `${what}: ${e instanceof Error ? e.message : String(e)}`, {cause: error});
}

/** Human message for any thrown value, one line, safe for a terminal. */
export function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return printable(message.replace(/\s*\n\s*/g, ' ').trim());
}

/**
 * Control characters shown as `\xNN`: names in a stranger's archive may hold a NUL, a carriage
 * return or an escape sequence that would rewrite the user's terminal when printed.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
