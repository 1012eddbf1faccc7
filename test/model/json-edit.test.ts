import {describe, expect, it} from 'vitest';
import {replaceTopLevelValues} from '../../src/model/json-edit.js';

describe('replaceTopLevelValues', () => {
  it('replaceTopLevelValues leaves every other byte of the config alone', () => {
    const raw = Buffer.from('{ "a" : {"x": "\\u003c&"} ,"rootfs":{"type":"layers","diff_ids":["old"]},\n "n": 1.50, "s":"\\"}{" }');
    const out = replaceTopLevelValues(raw, {rootfs: {type: 'layers', diff_ids: ['new']}, history: [{comment: 'h'}]}).toString();
    expect(out).toBe('{ "a" : {"x": "\\u003c&"} ,"rootfs":{"type":"layers","diff_ids":["new"]},\n "n": 1.50, "s":"\\"}{" ,"history":[{"comment":"h"}]}');
  });
});
