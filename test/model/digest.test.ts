import {createHash} from 'node:crypto';
import {execFileSync} from 'node:child_process';
import {describe, expect, it} from 'vitest';
import {FerryError} from '../../src/errors.js';
import {chainIds, digestHex, isDigest, parseDigest, sha256Of, splitDigest, type Digest} from '../../src/model/digest.js';
import {FIXTURES} from '../helpers/cli.js';
import {peerMissing} from '../helpers/peers.js';

/** Digests (OCI descriptor.md grammar) and ChainIDs (image-spec config.md), checked independently. */

const HEX = '0123456789abcdef'.repeat(4);

function thrown(f: () => unknown): FerryError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(FerryError);
    return e as FerryError;
  }
  throw new Error('expected an error');
}

describe('parseDigest', () => {
  it('accepts sha256 and sha512 with lowercase hex of the right length', () => {
    expect(parseDigest(`sha256:${HEX}`, 'here')).toBe(`sha256:${HEX}`);
    expect(parseDigest(`sha512:${HEX}${HEX}`, 'here')).toBe(`sha512:${HEX}${HEX}`);
    expect(splitDigest(`sha256:${HEX}` as Digest)).toEqual(['sha256', HEX]);
    expect(digestHex(`sha256:${HEX}` as Digest)).toBe(HEX);
  });

  it.each([
    [`sha256:${HEX.toUpperCase()}`, 'upper-case hex'],
    [`sha256:${HEX.slice(1)}`, '63 digits'],
    [`sha256:${HEX}0`, '65 digits'],
    [`sha256:${HEX.slice(1)}g`, 'not hex'],
    [`sha512:${HEX}`, 'sha512 of sha256 length'],
  ])('rejects %s (%s) as malformed, naming where', (value) => {
    const e = thrown(() => parseDigest(value, 'index.json manifests[0]'));
    expect(e.code).toBe('BAD_ARCHIVE');
    expect(e.message).toContain('index.json manifests[0]');
    expect(e.message).toContain(value);
  });

  it.each([['sha256'], [HEX], [''], ['sha256:'], [':abc'], ['SHA256:abc']])('rejects %j by the grammar', (value) => {
    expect(thrown(() => parseDigest(value, 'x')).code).toBe('BAD_ARCHIVE');
  });

  it('rejects non-strings', () => {
    for (const value of [undefined, null, 42, {}]) expect(thrown(() => parseDigest(value, 'x')).code).toBe('BAD_ARCHIVE');
  });

  it('an algorithm that fits the grammar but ferry cannot compute is UNSUPPORTED, named', () => {
    for (const value of [`md5:${HEX.slice(0, 32)}`, `blake3:${HEX}`, `sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564`]) {
      const e = thrown(() => parseDigest(value, 'x'));
      expect(e.code).toBe('UNSUPPORTED');
      expect(e.message).toContain(value.split(':')[0]!);
    }
  });

  it('isDigest agrees without throwing', () => {
    expect(isDigest(`sha256:${HEX}`)).toBe(true);
    expect(isDigest(`sha256:${HEX.toUpperCase()}`)).toBe(false);
    expect(isDigest(`md5:${HEX.slice(0, 32)}`)).toBe(false);
    expect(isDigest(42)).toBe(false);
  });

  it('sha256Of is sha256 of the bytes', () => {
    expect(sha256Of('')).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Of(Buffer.from('abc'))).toBe(`sha256:${createHash('sha256').update('abc').digest('hex')}`);
  });
});

describe('chainIds', () => {
  /** ChainID(L0) = DiffID(L0); ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln)), over "sha256:…" strings. */
  function expectedChain(diffIds: string[]): string[] {
    const out: string[] = [];
    for (const d of diffIds) {
      const previous = out.at(-1);
      out.push(previous === undefined ? d : `sha256:${createHash('sha256').update(`${previous} ${d}`, 'utf8').digest('hex')}`);
    }
    return out;
  }

  it('empty and single-layer', () => {
    expect(chainIds([])).toEqual([]);
    expect(chainIds([`sha256:${HEX}` as Digest])).toEqual([`sha256:${HEX}`]);
  });

  it.skipIf(peerMissing('tar', 'jq'))("the edge fixture's diff_ids, as read by tar + jq", () => {
    const manifest = execFileSync('tar', ['-xOf', `${FIXTURES}/edge.docker-save.tar`, 'manifest.json']);
    const configName = execFileSync('jq', ['-r', '.[0].Config'], {input: manifest, encoding: 'utf8'}).trim();
    const config = execFileSync('tar', ['-xOf', `${FIXTURES}/edge.docker-save.tar`, configName]);
    const diffIds = JSON.parse(execFileSync('jq', ['-c', '.rootfs.diff_ids'], {input: config, encoding: 'utf8'})) as string[];
    expect(diffIds).toHaveLength(4);
    const got = chainIds(diffIds as Digest[]);
    expect(got).toEqual(expectedChain(diffIds));
    expect(new Set(got).size).toBe(4);
    // the order matters: a chain is not a set
    expect(chainIds([...diffIds].reverse() as Digest[]).at(-1)).not.toBe(got.at(-1));
  });
});
