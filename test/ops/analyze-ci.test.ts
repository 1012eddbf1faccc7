import {execFileSync} from 'node:child_process';
import {describe, expect, it} from 'vitest';
import {UsageError} from '../../src/errors.js';
import type {AnalyzeResult} from '../../src/ops/analyze/analyze.js';
import {evaluateCi, junitReport, parseCiConfig, resolveCiRules} from '../../src/ops/analyze/ci.js';
import {parseByteSize} from '../../src/ops/format.js';

/**
 * The CI gate's reading of dive's settings. Expected values come from dive's and go-humanize's
 * sources: wagoodman/dive cmd/dive/cli/internal/command/ci/rules.go (defaults 0.9 / disabled / 0.1;
 * "disabled", "off", "false" and "" turn a rule off; efficiency fails below, the others above),
 * options/ci.go (.dive-ci: `rules:` with camelCase keys) and options/ci_rules.go (kebab-case keys),
 * its testdata configs, and dustin/go-humanize bytes.go ParseBytes (SI and IEC units, any case).
 */

describe('highestWastedBytes sizes (go-humanize ParseBytes)', () => {
  it.each([
    ['20MB', 20_000_000],
    ['19Mb', 19_000_000],
    ['20MiB', 20 * 2 ** 20],
    ['1.5GiB', 1.5 * 2 ** 30],
    ['1.5 GB', 1_500_000_000],
    ['50kB', 50_000],
    ['5 kib', 5 * 1024],
    ['1,000', 1000],
    ['1000', 1000],
    ['42 B', 42],
    ['3m', 3_000_000],
    ['2Ki', 2048],
  ])('%s is %i bytes', (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });

  it.each(['1BB', '-1BB', 'MB', '', 'ten MB', '1.2.3MB'])('%j is not a size', (text) => {
    expect(parseByteSize(text)).toBeUndefined();
  });
});

describe('dive CI config files', () => {
  it("reads the .dive-ci form dive's README documents (rules:, camelCase, comments)", () => {
    const text = [
      'rules:',
      '  # If the efficiency is measured below X%, mark as failed.',
      '  lowestEfficiency: 0.95',
      '',
      '  # Expressed in B, KB, MB, and GB.',
      '  highestWastedBytes: 20MB # trailing comment',
      '  highestUserWastedPercent: 0.20',
    ].join('\n');
    expect(parseCiConfig(text, '.dive-ci')).toEqual({lowestEfficiency: '0.95', highestWastedBytes: '20MB', highestUserWastedPercent: '0.20'});
  });

  it("reads dive's own config keys (kebab-case, quoted values, lowest-efficiency-threshold) next to other settings", () => {
    const text = ["ci: true", 'rules:', "  lowest-efficiency-threshold: '0.10'", "  highest-wasted-bytes: '20MB'", '  highest-user-wasted-percent: "0.90"', 'keybinding:', '  quit: ctrl+c'].join('\r\n');
    expect(parseCiConfig(text, 'dive.yaml')).toEqual({lowestEfficiency: '0.10', highestWastedBytes: '20MB', highestUserWastedPercent: '0.90'});
    expect(parseCiConfig('rules:\n    lowest-efficiency: 0.5\n', 'x')).toEqual({lowestEfficiency: '0.5'});
  });

  it('reads a flow mapping, a document marker, disabled and empty values; warns about unknown rules', () => {
    const warnings: string[] = [];
    const values = parseCiConfig('---\nrules: {lowestEfficiency: disabled, highestWastedBytes: 1GB, maxLayers: 3}\n', 'f', (m) => warnings.push(m));
    expect(values).toEqual({lowestEfficiency: 'disabled', highestWastedBytes: '1GB'});
    expect(warnings).toEqual([expect.stringContaining('unknown CI rule "maxLayers"')]);
    expect(parseCiConfig('rules:\n  highestWastedBytes:\n  lowestEfficiency: off\n', 'f')).toEqual({highestWastedBytes: '', lowestEfficiency: 'off'});
  });

  it('refuses what it cannot read, naming the file and line', () => {
    expect(() => parseCiConfig('rules:\n  - lowestEfficiency: 0.9\n', '.dive-ci')).toThrow(/\.dive-ci:2: a YAML list/);
    expect(() => parseCiConfig('rules:\n  lowestEfficiency: 0.9\n   highestWastedBytes: 1\n', '.dive-ci')).toThrow(/\.dive-ci:3: inconsistent indentation/);
    expect(() => parseCiConfig('rules: [1, 2]\n', 'c')).toThrow(UsageError);
    expect(() => parseCiConfig('rules: 3\n', 'c')).toThrow(/"rules" must be a mapping/);
  });
});

describe('CI rules', () => {
  const result = (efficiency: number, reclaimableBytes: number, userReclaimableRatio: number): AnalyzeResult =>
    ({image: {configDigest: 'sha256:00', names: []}, totals: {efficiency, reclaimableBytes, userReclaimableRatio, duplicateBytes: 0}}) as unknown as AnalyzeResult;

  it("takes dive's defaults where nothing is given: 0.9, disabled, 0.1", () => {
    expect(resolveCiRules({}, undefined).map((r) => [r.rule, r.value, r.from, r.threshold])).toEqual([
      ['lowestEfficiency', '0.9', 'default', 0.9],
      ['highestWastedBytes', 'disabled', 'default', null],
      ['highestUserWastedPercent', '0.1', 'default', 0.1],
    ]);
  });

  it('flags win over the file, the file over the defaults', () => {
    const rules = resolveCiRules({highestWastedBytes: '10MB'}, {highestWastedBytes: '20MB', lowestEfficiency: '0.5'}, '.dive-ci');
    expect(rules.map((r) => [r.rule, r.from, r.threshold])).toEqual([
      ['lowestEfficiency', 'file', 0.5],
      ['highestWastedBytes', 'flag', 10_000_000],
      ['highestUserWastedPercent', 'default', 0.1],
    ]);
  });

  it.each([
    [{lowestEfficiency: '1.1'}, /lowest-efficiency "1.1": expected a ratio between 0 and 1/],
    [{lowestEfficiency: '-9'}, /expected a ratio/],
    [{highestUserWastedPercent: '10'}, /expected a ratio/],
    [{highestWastedBytes: '1BB'}, /expected a size/],
  ])('refuses %j as a usage error, as dive reports misconfigured rules', (flags, message) => {
    expect(() => resolveCiRules(flags, undefined)).toThrow(UsageError);
    expect(() => resolveCiRules(flags, undefined)).toThrow(message);
  });

  it('compares as dive does: efficiency fails below its threshold, the others above theirs; equal passes', () => {
    const rules = resolveCiRules({lowestEfficiency: '0.5', highestWastedBytes: '1000', highestUserWastedPercent: '0.25'}, undefined);
    expect(evaluateCi(result(0.5, 1000, 0.25), rules).rules.map((r) => r.status)).toEqual(['pass', 'pass', 'pass']);
    const failed = evaluateCi(result(0.49, 1001, 0.26), rules);
    expect(failed.pass).toBe(false);
    expect(failed.rules.map((r) => r.status)).toEqual(['fail', 'fail', 'fail']);
    expect(failed.rules[1]!.message).toBe('too many bytes reclaimable (reclaimable-bytes=1001 > threshold=1000)');
    const off = evaluateCi(result(0, 1e12, 5), resolveCiRules({lowestEfficiency: 'off', highestWastedBytes: 'false', highestUserWastedPercent: 'disabled'}, undefined));
    expect(off.pass).toBe(true);
    expect(off.rules.map((r) => r.status)).toEqual(['disabled', 'disabled', 'disabled']);
  });

  it('writes JUnit XML that an XML parser reads: one test case per rule, failures and skips counted', () => {
    const ci = evaluateCi(result(0.2, 5, 0.3), resolveCiRules({highestWastedBytes: 'disabled'}, undefined));
    const xml = junitReport(ci, result(0.2, 5, 0.3), 'app:<1> & "x"');
    const parsed = execFileSync('python3', ['-c', 'import sys, xml.etree.ElementTree as E; r = E.fromstring(sys.stdin.read()); s = r.find("testsuite"); print(r.get("tests"), r.get("failures"), r.get("skipped"), s.get("name"), [(c.get("name"), [x.tag for x in c]) for c in s.findall("testcase")])'], {input: xml, encoding: 'utf8'}).trim();
    expect(parsed).toBe(`3 2 1 ferry analyze app:<1> & "x" [('lowestEfficiency', ['failure']), ('highestWastedBytes', ['skipped']), ('highestUserWastedPercent', ['failure'])]`);
  });
});
