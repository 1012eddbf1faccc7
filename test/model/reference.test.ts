import {describe, expect, it} from 'vitest';
import {UsageError} from '../../src/errors.js';
import {familiarName, familiarRepository, fullName, parseReference, sameReference, tryParseReference, withDefaultTag} from '../../src/model/reference.js';

/**
 * Docker reference normalisation (distribution/reference: ParseNormalizedNamed, FamiliarString), the
 * spellings docs/formats.md §1/§3 show each tool writing: Docker's RepoTags `demo:1`, skopeo/podman's
 * `docker.io/library/demo:1`, podman's `localhost/…`, containerd's full names.
 */
const HEX = 'a'.repeat(64);

describe('parse and normalise', () => {
  it.each([
    // input, full name, familiar name
    ['demo:1', 'docker.io/library/demo:1', 'demo:1'],
    ['docker.io/library/demo:1', 'docker.io/library/demo:1', 'demo:1'],
    ['index.docker.io/library/demo:1', 'docker.io/library/demo:1', 'demo:1'],
    ['docker.io/demo', 'docker.io/library/demo', 'demo'],
    ['library/demo', 'docker.io/library/demo', 'demo'],
    ['ferry-fixture/edge:1', 'docker.io/ferry-fixture/edge:1', 'ferry-fixture/edge:1'],
    ['docker.io/ferry-fixture/edge:1', 'docker.io/ferry-fixture/edge:1', 'ferry-fixture/edge:1'],
    ['localhost/x', 'localhost/x', 'localhost/x'],
    ['localhost/ferry-fixture/edge:1', 'localhost/ferry-fixture/edge:1', 'localhost/ferry-fixture/edge:1'],
    ['localhost:5000/x:y', 'localhost:5000/x:y', 'localhost:5000/x:y'],
    ['registry:5000/a/b:t', 'registry:5000/a/b:t', 'registry:5000/a/b:t'],
    ['example.com/ns/app:v2', 'example.com/ns/app:v2', 'example.com/ns/app:v2'],
    ['[::1]:5000/a:b', '[::1]:5000/a:b', '[::1]:5000/a:b'],
    ['a/b/c/d', 'docker.io/a/b/c/d', 'a/b/c/d'],
    ['foo__bar.baz-qux', 'docker.io/library/foo__bar.baz-qux', 'foo__bar.baz-qux'],
    [`demo@sha256:${HEX}`, `docker.io/library/demo@sha256:${HEX}`, `demo@sha256:${HEX}`],
    [`demo:1@sha256:${HEX}`, `docker.io/library/demo:1@sha256:${HEX}`, `demo:1@sha256:${HEX}`],
    [`example.com/app@sha512:${'b'.repeat(128)}`, `example.com/app@sha512:${'b'.repeat(128)}`, `example.com/app@sha512:${'b'.repeat(128)}`],
  ])('%s', (input, full, familiar) => {
    const ref = parseReference(input);
    expect(fullName(ref)).toBe(full);
    expect(familiarName(ref)).toBe(familiar);
    // normalising is idempotent from either spelling
    expect(fullName(parseReference(full))).toBe(full);
    expect(familiarName(parseReference(familiar))).toBe(familiar);
  });

  it('splits domain, path, tag and digest', () => {
    expect(parseReference('registry:5000/a/b:t')).toEqual({domain: 'registry:5000', path: 'a/b', tag: 't'});
    expect(parseReference(`demo:1@sha256:${HEX}`)).toEqual({domain: 'docker.io', path: 'library/demo', tag: '1', digest: `sha256:${HEX}`});
    expect(familiarRepository(parseReference('docker.io/library/demo:1'))).toBe('demo');
  });

  it.each([
    'Demo:1', // upper case in the path
    'example.com/Foo',
    'a:b:c',
    'foo___bar',
    '-foo',
    'demo:.x', // a tag cannot start with '.'
    `demo:${'t'.repeat(129)}`, // tags are at most 128 characters
    '',
    ':1',
    'demo@sha256:xyz', // bad hex
    `demo@sha256:${'A'.repeat(64)}`, // upper-case hex
    `demo@sha256:${'a'.repeat(63)}`,
    `demo@md5:${'a'.repeat(32)}`, // unknown algorithm
  ])('rejects %j', (input) => {
    expect(tryParseReference(input)).toBeUndefined();
    expect(() => parseReference(input)).toThrow(UsageError);
  });

  it('a tag of 128 characters is fine', () => {
    expect(parseReference(`demo:${'t'.repeat(128)}`).tag).toHaveLength(128);
  });
});

describe('sameReference', () => {
  it.each([
    ['demo:1', 'docker.io/library/demo:1'],
    ['demo', 'docker.io/library/demo:latest'],
    ['demo:latest', 'index.docker.io/library/demo'],
    ['ferry-fixture/edge:1', 'docker.io/ferry-fixture/edge:1'],
    ['localhost/x:1', 'localhost/x:1'],
  ])('%s ≡ %s', (a, b) => {
    expect(sameReference(a, b)).toBe(true);
    expect(sameReference(b, a)).toBe(true);
  });

  it.each([
    ['demo:1', 'demo:2'],
    ['localhost/demo:1', 'demo:1'], // podman's localhost/ is another registry
    ['ferry-fixture/edge:1', 'localhost/ferry-fixture/edge:1'],
    ['example.com/demo:1', 'demo:1'],
    ['demo:1', 'not a reference'],
  ])('%s ≢ %s', (a, b) => {
    expect(sameReference(a, b)).toBe(false);
  });

  it('withDefaultTag adds latest only when there is neither tag nor digest', () => {
    expect(withDefaultTag(parseReference('demo')).tag).toBe('latest');
    expect(withDefaultTag(parseReference('demo:1')).tag).toBe('1');
    expect(withDefaultTag(parseReference(`demo@sha256:${HEX}`)).tag).toBeUndefined();
  });
});
