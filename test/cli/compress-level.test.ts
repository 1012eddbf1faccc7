/**
 * --compress-level: the gzip or zstd level of the layers ferry compresses. Judged by the peers:
 * gzip -t and zstd -t accept every blob, each decompresses to bytes whose sha256sum is the diffID
 * sha256sum gave its layer tar when the archive was made, a lower level gives a larger blob, and
 * a level outside what --compress takes is a usage error (exit 2) before anything is written.
 */
import {execFileSync} from 'node:child_process';
import {existsSync, mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry} from '../helpers/cli.js';
import {peerMissing} from '../helpers/peers.js';
import {makeTmp, removeTmp, sha256} from '../ops/convert-fixtures.js';

const sh = (script: string, ...args: string[]): string => execFileSync('sh', ['-c', script, 'sh', ...args], {maxBuffer: 1 << 26}).toString('utf8');

/** A docker-save-style archive (tar, sha256sum) of one layer of varied text (numbers, words): it compresses, and differently at each level. */
function makeTextArchive(dir: string): {file: string; diffId: string} {
  const work = path.join(dir, 'work');
  mkdirSync(path.join(work, 'content'), {recursive: true});
  mkdirSync(path.join(work, 'layer'));
  sh('seq 1 300000 > "$1/numbers.txt" && seq 1 7 300000 | sed "s/\\(.*\\)/line \\1 of a text file that compresses: \\1 \\1/" > "$1/lines.txt"', path.join(work, 'content'));
  const layer = path.join(work, 'layer', 'layer.tar');
  sh('tar --sort=name --owner=0 --group=0 --mtime=@0 -C "$1" -cf "$2" .', path.join(work, 'content'), layer);
  const diffId = `sha256:${sh('sha256sum "$1"', layer).split(' ')[0]}`;
  sh('rm -r "$1"', path.join(work, 'content'));
  const config = JSON.stringify({architecture: 'amd64', os: 'linux', config: {}, rootfs: {type: 'layers', diff_ids: [diffId]}});
  const configName = `${sha256(config).slice(7)}.json`;
  writeFileSync(path.join(work, configName), config);
  writeFileSync(path.join(work, 'manifest.json'), JSON.stringify([{Config: configName, RepoTags: ['ferry-test/level:1'], Layers: ['layer/layer.tar']}]));
  const file = path.join(dir, 'text.tar');
  sh('tar --sort=name -C "$1" -cf "$2" .', work, file);
  sh('rm -r "$1"', work);
  return {file, diffId};
}

/** The one layer blob of an OCI layout ferry wrote. */
function layerBlob(layout: string): string {
  const blob = (digest: string): string => path.join(layout, 'blobs', 'sha256', digest.slice(7));
  const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as {manifests: Array<{digest: string}>};
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as {layers: Array<{digest: string}>};
  expect(manifest.layers).toHaveLength(1);
  return blob(manifest.layers[0]!.digest);
}

describe.skipIf(peerMissing('tar', 'sha256sum', 'seq', 'sed', 'gzip', 'zstd'))('--compress-level', () => {
  let tmp: string;
  let source: {file: string; diffId: string};
  beforeAll(() => {
    tmp = makeTmp('ferry-level-');
    source = makeTextArchive(tmp);
  });
  afterAll(() => removeTmp(tmp));

  const convert = (name: string, ...flags: string[]): string => {
    const out = path.join(tmp, name);
    const r = ferry(['convert', source.file, `oci:${out}`, ...flags]);
    expect(r.status, r.stderr).toBe(0);
    return layerBlob(out);
  };

  for (const [compress, tool, low, high] of [['gzip', 'gzip', '1', '9'], ['zstd', 'zstd', '1', '19']] as const) {
    it(`${compress}: every level gives a blob ${tool} accepts and decompresses to the diffID; lower levels are larger; the default level is the one without the flag`, () => {
      const blobs = {low: convert(`${compress}-low`, '--compress', compress, '--compress-level', low), high: convert(`${compress}-high`, '--compress', compress, '--compress-level', high), plain: convert(`${compress}-plain`, '--compress', compress)};
      for (const blob of Object.values(blobs)) {
        sh(`${tool} -t < "$1"`, blob);
        expect(`sha256:${sh(`${tool} -dc < "$1" | sha256sum`, blob).split(' ')[0]}`).toBe(source.diffId);
        expect(`sha256:${sh('sha256sum "$1"', blob).split(' ')[0]}`).toBe(`sha256:${path.basename(blob)}`);
      }
      expect(statSync(blobs.low).size).toBeGreaterThan(statSync(blobs.high).size);
      const explicitDefault = convert(`${compress}-default`, '--compress', compress, '--compress-level', compress === 'gzip' ? '6' : '3');
      expect(path.basename(explicitDefault)).toBe(path.basename(blobs.plain));
      // Same input and level, same bytes.
      expect(path.basename(convert(`${compress}-low-again`, '--compress', compress, '--compress-level', low))).toBe(path.basename(blobs.low));
    });
  }

  const refused: Array<[string[], RegExp]> = [
    [['convert', '--compress-level', '3'], /^ferry: --compress-level 3: a level applies to --compress gzip or zstd$/],
    [['convert', '--compress', 'none', '--compress-level', '3'], /^ferry: --compress-level 3: a level applies to --compress gzip or zstd$/],
    [['convert', '--compress', 'gzip', '--compress-level', '10'], /^ferry: --compress-level 10: gzip levels are 1 to 9$/],
    [['convert', '--compress', 'zstd', '--compress-level', '20'], /^ferry: --compress-level 20: zstd levels are 1 to 19$/],
    [['squash', '--compress', 'gzip', '--compress-level', '0'], /^ferry: --compress-level 0: gzip levels are 1 to 9$/],
    [['convert', '--compress', 'gzip', '--compress-level', 'fast'], /^ferry: .*--compress-level.*integer/],
  ];
  for (const [[command, ...flags], message] of refused) {
    it(`${command} ${flags.join(' ')}: exit 2, one line, nothing written`, () => {
      const out = path.join(tmp, `refused-${flags.join('-')}`);
      const r = ferry(command === 'squash' ? ['squash', source.file, `docker-archive:${out}`, ...flags] : ['convert', source.file, `oci:${out}`, ...flags]);
      expect(r.status).toBe(2);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr.trimEnd()).toMatch(message);
      expect(r.stdout).toBe('');
      expect(existsSync(out)).toBe(false);
    });
  }

  it('import, pull, push and save take it too (the flag of every command with --compress)', () => {
    for (const command of ['import', 'pull', 'push', 'save']) {
      const r = ferry([command, '--help']);
      expect(r.status, command).toBe(0);
      expect(r.stdout, command).toMatch(/--compress-level=<value>/);
    }
  });
});
