import {describe, expect, it} from 'vitest';
import {UsageError} from '../src/errors.js';
import {DEFAULT_LIMITS, resolveSettings} from '../src/settings.js';

describe('library settings are passed in and checked', () => {
  it('defaults fill what is not given', () => {
    const s = resolveSettings({limits: {maxRatio: 10}, workers: 0});
    expect(s.limits).toEqual({...DEFAULT_LIMITS, maxRatio: 10});
    expect(s.workers).toBe(0);
  });

  it('a limit that is not a positive number is a usage error naming it', () => {
    for (const bad of [Number.NaN, 0, -1]) expect(() => resolveSettings({limits: {maxRatio: bad}})).toThrow(UsageError);
    expect(() => resolveSettings({limits: {maxJsonBytes: Number.NaN}})).toThrow(/maxJsonBytes/);
    expect(() => resolveSettings({workers: 1.5})).toThrow(/workers/);
  });
});
