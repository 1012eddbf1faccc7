import {describe, expect, it} from 'vitest';
import {EXIT_CODES, exitCodeFor, FerryError, InterruptedError, UsageError, type FerryErrorCode} from '../src/errors.js';

describe('exit codes come from the error code, in one table', () => {
  it('a FerryError with code USAGE exits 2 like a UsageError (it used to exit 1)', () => {
    expect(exitCodeFor(new FerryError('USAGE', 'refusing to read an archive from a terminal'))).toBe(2);
    expect(exitCodeFor(new UsageError('bad flag'))).toBe(2);
  });

  it('every other code exits 1; signals exit 128 + their number; anything else 1', () => {
    for (const [code, exit] of Object.entries(EXIT_CODES) as Array<[FerryErrorCode, number]>) {
      if (code === 'USAGE' || code === 'INTERRUPTED') continue;
      expect(exitCodeFor(new FerryError(code, 'x')), code).toBe(exit);
      expect(exit, code).toBe(1);
    }
    expect(exitCodeFor(new InterruptedError('SIGINT'))).toBe(130);
    expect(exitCodeFor(new InterruptedError('SIGTERM'))).toBe(143);
    expect(exitCodeFor(new Error('plain'))).toBe(1);
    expect(exitCodeFor('a string')).toBe(1);
  });
});
