import {execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {readFileSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry, requireBuiltCli} from '../helpers/cli.js';
import {craftDockerArchive, type CraftLayer} from '../helpers/tree-model.js';
import {makeTmp, removeTmp} from '../ops/convert-fixtures.js';

/**
 * `ferry analyze` as a user runs it, on an image crafted with Python's tarfile whose figures follow
 * from its construction: a 3 MB file chmod-ed in layer 2 (3,000,000 reclaimable, the kept copy not
 * counted), a 1.5 MB directory removed in layer 2, and 16 identical bytes at two final paths.
 */
const BIG = 3_000_000;
const CACHE = [1_000_000, 500_000];
const SH = 200_000;
const PASSWD = 'root:x:0:0::/root:/bin/sh\n';
const DUP = 'same sixteen b.\n';
const RECLAIMABLE = BIG + CACHE[0]! + CACHE[1]!;
const STORED = SH + PASSWD.length + BIG + CACHE[0]! + CACHE[1]! + BIG + 2 * DUP.length;
const FINAL = STORED - RECLAIMABLE;
const USER = STORED - SH - PASSWD.length;

const LAYERS: CraftLayer[] = [
  [{path: 'bin/'}, {path: 'bin/sh', content: {zeros: SH}, mode: 0o755}, {path: 'etc/'}, {path: 'etc/passwd', content: PASSWD}],
  [{path: 'data/'}, {path: 'data/big.bin', content: {zeros: BIG}}, {path: 'cache/'}, {path: 'cache/a.bin', content: {zeros: CACHE[0]!}}, {path: 'cache/b.bin', content: {zeros: CACHE[1]!}}],
  [{path: 'data/'}, {path: 'data/big.bin', content: {zeros: BIG}, mode: 0o600}, {path: '.wh.cache'}, {path: 'lib/'}, {path: 'lib/dup1', content: DUP}, {path: 'lib/dup2', content: DUP}],
];

describe('ferry analyze (CLI)', () => {
  let dir: string;
  let image: string;
  beforeAll(() => {
    requireBuiltCli();
    dir = makeTmp('ferry-analyze-cli-');
    image = path.join(dir, 'app.tar');
    craftDockerArchive(image, 'analyze/app:1', LAYERS, {history: [{created_by: 'base'}, {created_by: 'COPY data cache'}, {created_by: 'RUN chmod 600 /data/big.bin && rm -rf /cache'}]});
  });
  afterAll(() => removeTmp(dir));

  it('--json: the documented shape, with the figures the construction gives', () => {
    const r = ferry(['analyze', '--json', image]);
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(Object.keys(doc)).toEqual(['image', 'totals', 'layers', 'reclaimable', 'duplicates', 'squash', 'hashing', 'warnings']);
    expect(doc.image.names).toEqual(['analyze/app:1']);
    expect(doc.totals).toMatchObject({layers: 3, storedBytes: STORED, finalBytes: FINAL, reclaimableBytes: RECLAIMABLE, reclaimableFiles: 3, duplicateBytes: DUP.length, userStoredBytes: USER});
    expect(doc.totals.efficiency).toBeCloseTo(FINAL / STORED, 12);
    expect(doc.totals.userReclaimableRatio).toBeCloseTo(RECLAIMABLE / USER, 12);
    expect(doc.layers.map((l: {createdBy: string; files: object}) => [l.createdBy, l.files])).toEqual([
      ['base', {added: 2, changed: 0, removed: 0}],
      ['COPY data cache', {added: 3, changed: 0, removed: 0}],
      ['RUN chmod 600 /data/big.bin && rm -rf /cache', {added: 2, changed: 1, removed: 2}],
    ]);
    expect(doc.reclaimable.byCause).toEqual({overwritten: BIG, removed: CACHE[0]! + CACHE[1]!, opaque: 0});
    expect(doc.reclaimable.paths.map((p: {path: string; bytes: number}) => [p.path, p.bytes])).toEqual([
      ['/data/big.bin', BIG],
      ['/cache/a.bin', CACHE[0]],
      ['/cache/b.bin', CACHE[1]],
    ]);
    expect(doc.reclaimable.paths[0].copies[0]).toEqual({layer: 1, bytes: BIG, hiddenBy: 2, cause: 'overwritten', rewrite: 'attributes', changed: ['mode'], sha256: createHash('sha256').update(Buffer.alloc(BIG)).digest('hex')});
    expect(doc.reclaimable.paths[0].final).toEqual({layer: 2, bytes: BIG, mode: 0o600});
    expect(doc.reclaimable.hidingEntries).toEqual([
      {layer: 2, path: '/data/big.bin', cause: 'overwritten', files: 1, bytes: BIG},
      {layer: 2, path: '/cache', cause: 'removed', files: 2, bytes: CACHE[0]! + CACHE[1]!},
    ]);
    expect(doc.duplicates).toEqual({bytes: DUP.length, count: 1, groups: [{sha256: createHash('sha256').update(DUP).digest('hex'), bytesEach: DUP.length, copies: 2, paths: ['/lib/dup1', '/lib/dup2'], reclaimableBytes: DUP.length, layers: [2]}]});
    expect(doc.squash.options.map((o: {fromLayer: number}) => o.fromLayer)).toEqual([0, 1, 2]);
    expect(doc.squash.best.fromLayer).toBe(1);
    expect(doc.hashing).toEqual({enabled: true, files: 4, bytes: 2 * BIG + 2 * DUP.length, rewrites: 1, duplicateCandidates: 2});
  });

  it('the text report: layers, reclaimable paths, what hid them, duplicates, squash savings, and which bytes were hashed', () => {
    const r = ferry(['analyze', image, '--top', '2']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`reclaimable:  4.3 MiB (${RECLAIMABLE.toLocaleString('en-US')} bytes) in 3 hidden copies`);
    expect(r.stdout).toContain('/data/big.bin  L1 rewritten with the same content (mode changed) in L2; kept copy in L2');
    expect(r.stdout).toContain('L2 removed /cache (2 files)');
    expect(r.stdout).not.toContain('/cache/b.bin');
    expect(r.stdout).toMatch(/best: ferry squash --from-layer 1 \(saves .* and keeps layer 0 as it is\)/);
    expect(r.stdout).toContain('content hashes: 4 file(s)');
    expect(ferry(['analyze', image, '--no-hash']).stdout).toContain('content hashes: off (--no-hash)');
  });

  describe('--ci', () => {
    const junitCounts = (file: string): string =>
      execFileSync('python3', ['-c', 'import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); print(r.get("tests"), r.get("failures"), r.get("skipped"))', file], {encoding: 'utf8'}).trim();

    it("dive's defaults (0.9, disabled, 0.1): exit 1 naming both failed rules; --junit records them", () => {
      const junit = path.join(dir, 'defaults.xml');
      const r = ferry(['analyze', image, '--ci', '--junit', junit], {cwd: dir});
      expect(r.status).toBe(1);
      expect(r.stdout).toContain('FAIL  lowestEfficiency');
      expect(r.stdout).toContain('SKIP  highestWastedBytes');
      expect(r.stdout).toContain('FAIL [pass:0 fail:2 skip:1]');
      expect(r.stderr).toMatch(/^ferry: CI failed: lowestEfficiency: image efficiency is too low \(efficiency=0\.\d\d < threshold=0\.9\); highestUserWastedPercent: .*\n$/);
      expect(junitCounts(junit)).toBe('3 2 1');
    });

    it('thresholds from flags, with units: 4.4MiB passes 4,500,000 bytes, 4.4MB does not; duplicates are not counted', () => {
      const pass = ferry(['analyze', image, '--ci', '--lowest-efficiency', '0.4', '--highest-user-wasted-percent', '0.9', '--highest-wasted-bytes', '4.4MiB'], {cwd: dir});
      expect(pass.status, pass.stderr).toBe(0);
      expect(pass.stdout).toContain('PASS [pass:3 fail:0 skip:0]');
      const exact = ferry(['analyze', image, '--ci', '--lowest-efficiency', 'off', '--highest-user-wasted-percent', 'disabled', '--highest-wasted-bytes', String(RECLAIMABLE)], {cwd: dir});
      expect(exact.status, exact.stderr).toBe(0);
      const fail = ferry(['analyze', image, '--ci', '--lowest-efficiency', '0.4', '--highest-user-wasted-percent', '0.9', '--highest-wasted-bytes', '4.4MB'], {cwd: dir});
      expect(fail.status).toBe(1);
      expect(fail.stderr).toBe(`ferry: CI failed: highestWastedBytes: too many bytes reclaimable (reclaimable-bytes=${RECLAIMABLE} > threshold=4400000)\n`);
    });

    it('reads .dive-ci from the working directory as dive does; flags win over it; --ci-config names another file', () => {
      const cwd = makeTmp('ferry-dive-ci-');
      try {
        writeFileSync(path.join(cwd, '.dive-ci'), 'rules:\n  lowestEfficiency: 0.4\n  highestWastedBytes: 4MB\n  highestUserWastedPercent: disabled\n');
        const fromFile = ferry(['analyze', image, '--ci'], {cwd});
        expect(fromFile.status).toBe(1);
        expect(fromFile.stdout).toContain('PASS  lowestEfficiency (0.4; from file)');
        expect(fromFile.stdout).toContain('(config: .dive-ci)');
        expect(fromFile.stderr).toMatch(/CI failed: highestWastedBytes: .*threshold=4000000\)\n$/);
        const overridden = ferry(['analyze', image, '--ci', '--highest-wasted-bytes', '5MB'], {cwd});
        expect(overridden.status, overridden.stderr).toBe(0);
        writeFileSync(path.join(cwd, 'dive.yaml'), "rules:\n  lowest-efficiency: '0.99'\n  highest-user-wasted-percent: 'disabled'\n");
        const other = ferry(['analyze', image, '--ci', '--ci-config', 'dive.yaml', '--json'], {cwd});
        expect(other.status).toBe(1);
        const doc = JSON.parse(other.stdout) as {ci: {pass: boolean; configFile: string; rules: Array<{rule: string; status: string; from: string}>}};
        expect(doc.ci.pass).toBe(false);
        expect(doc.ci.configFile).toBe('dive.yaml');
        expect(doc.ci.rules.map((x) => [x.rule, x.status, x.from])).toEqual([
          ['lowestEfficiency', 'fail', 'file'],
          ['highestWastedBytes', 'disabled', 'default'],
          ['highestUserWastedPercent', 'disabled', 'file'],
        ]);
      } finally {
        removeTmp(cwd);
      }
    });

    it('usage errors exit 2 before any work: a bad threshold, a threshold without --ci; a missing --ci-config is named', () => {
      const bad = ferry(['analyze', image, '--ci', '--lowest-efficiency', '1.5'], {cwd: dir});
      expect(bad.status).toBe(2);
      expect(bad.stderr).toBe('ferry: --lowest-efficiency "1.5": expected a ratio between 0 and 1 (or "disabled")\n');
      expect(ferry(['analyze', image, '--lowest-efficiency', '0.5'], {cwd: dir})).toMatchObject({status: 2, stderr: 'ferry: --lowest-efficiency needs --ci\n'});
      const missing = ferry(['analyze', image, '--ci', '--ci-config', 'nope.yaml'], {cwd: dir});
      expect(missing.status).toBe(1);
      expect(missing.stderr).toBe('ferry: nope.yaml: no such file or directory\n');
      writeFileSync(path.join(dir, 'broken.yaml'), 'rules:\n  - lowestEfficiency\n');
      expect(ferry(['analyze', image, '--ci', '--ci-config', 'broken.yaml'], {cwd: dir}).stderr).toBe('ferry: broken.yaml:2: a YAML list is not expected in a CI config\n');
    });
  });

  it('--html writes one self-contained file, the same bytes for the same image', () => {
    const a = path.join(dir, 'a.html');
    const b = path.join(dir, 'b.html');
    expect(ferry(['analyze', image, '--html', a, '-q']).status).toBe(0);
    expect(ferry(['analyze', image, '--json', '--html', b]).status).toBe(0);
    const html = readFileSync(a, 'utf8');
    expect(readFileSync(b, 'utf8')).toBe(html);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|url\(\s*['"]?(https?:|\/\/)|@import|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });
});
