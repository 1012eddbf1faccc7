import {readFile} from 'node:fs/promises';
import {parseByteSize} from '../format.js';
import {ioError, UsageError} from '../../errors.js';
import type {AnalyzeResult} from './analyze.js';

/**
 * The CI gate of `ferry analyze --ci`, compatible with dive's (wagoodman/dive
 * cmd/dive/cli/internal/command/ci/rules.go, options/ci.go, options/ci_rules.go):
 *
 * - three rules: lowestEfficiency (fails when efficiency < value), highestWastedBytes (fails when
 *   reclaimable bytes > value) and highestUserWastedPercent (fails when reclaimable bytes / bytes of
 *   layers 1..top > value); ratios are 0..1, bytes are go-humanize sizes ("20MB", "19Mb", "1.5GiB",
 *   "1000");
 * - "disabled", "off", "false" or an empty value turns a rule off;
 * - defaults: 0.9, disabled, 0.1;
 * - the file is YAML: `rules:` holding the keys in camelCase (the `.dive-ci` form) or kebab-case
 *   (dive's own config file; `lowest-efficiency-threshold` too); dive's file wins over its own
 *   config, and here flags win over the file.
 *
 * What differs from dive is what the numbers measure: ferry's reclaimable bytes never count the
 * copy the image keeps (dive counts every copy of a path written twice, wagoodman/dive#684).
 */

export type CiRuleName = 'lowestEfficiency' | 'highestWastedBytes' | 'highestUserWastedPercent';
export const CI_RULES: readonly CiRuleName[] = ['lowestEfficiency', 'highestWastedBytes', 'highestUserWastedPercent'];
export const CI_DEFAULTS: Readonly<Record<CiRuleName, string>> = {lowestEfficiency: '0.9', highestWastedBytes: 'disabled', highestUserWastedPercent: '0.1'};

/** Rule values as written (strings, as dive reads them), by rule. */
export type CiValues = Partial<Record<CiRuleName, string>>;

export interface CiRule {
  rule: CiRuleName;
  /** The value as written ("disabled", "0.95", "20MB"). */
  value: string;
  /** Where it came from. */
  from: 'flag' | 'file' | 'default';
  /** The parsed threshold; null when disabled. */
  threshold: number | null;
}

export interface CiRuleResult extends CiRule {
  status: 'pass' | 'fail' | 'disabled';
  /** What was measured (efficiency, reclaimable bytes, or the user ratio). */
  actual: number;
  message: string;
}

export interface CiResult {
  pass: boolean;
  /** The config file read, or null. */
  configFile: string | null;
  rules: CiRuleResult[];
}

const KEYS: Record<string, CiRuleName> = {
  lowestefficiency: 'lowestEfficiency',
  lowestefficiencythreshold: 'lowestEfficiency',
  highestwastedbytes: 'highestWastedBytes',
  highestuserwastedpercent: 'highestUserWastedPercent',
};

const normalKey = (key: string): string => key.toLowerCase().replace(/[-_]/g, '');

/** dive's isRuleDisabled. */
export function isDisabled(value: string): boolean {
  const v = value.trim().toLowerCase();
  return v === '' || v === 'disabled' || v === 'off' || v === 'false';
}



/** Go's strconv.ParseFloat, for the decimal forms people write. */
function parseRatio(text: string): number | undefined {
  const t = text.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return undefined;
  return Number(t);
}

/** `label` names where the value was written ("--lowest-efficiency", ".dive-ci: lowestEfficiency"). */
function checkRule(rule: CiRuleName, value: string, from: CiRule['from'], label: string): CiRule {
  if (isDisabled(value)) return {rule, value, from, threshold: null};
  if (rule === 'highestWastedBytes') {
    const bytes = parseByteSize(value);
    if (bytes === undefined) throw new UsageError(`${label} "${value}": expected a size such as 20MB, 19Mb, 1.5GiB or 1000 (or "disabled")`);
    return {rule, value, from, threshold: bytes};
  }
  const ratio = parseRatio(value);
  if (ratio === undefined || ratio < 0 || ratio > 1) throw new UsageError(`${label} "${value}": expected a ratio between 0 and 1 (or "disabled")`);
  return {rule, value, from, threshold: ratio};
}

/** Flags over the file over dive's defaults; every value checked (a bad one is a usage error naming it). */
export function resolveCiRules(flags: CiValues, file: CiValues | undefined, fileName?: string): CiRule[] {
  return CI_RULES.map((rule) => {
    const flag = flags[rule];
    if (flag !== undefined) return checkRule(rule, flag, 'flag', `--${kebab(rule)}`);
    const fromFile = file?.[rule];
    if (fromFile !== undefined) return checkRule(rule, fromFile, 'file', `${fileName ?? 'CI config'}: ${rule}`);
    return checkRule(rule, CI_DEFAULTS[rule], 'default', rule);
  });
}

export function kebab(rule: CiRuleName): string {
  return rule.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

const shortRatio = (x: number): string => x.toFixed(2);

export function evaluateCi(result: AnalyzeResult, rules: readonly CiRule[], configFile: string | null = null): CiResult {
  const {efficiency, reclaimableBytes, userReclaimableRatio} = result.totals;
  const out = rules.map((r): CiRuleResult => {
    const actual = r.rule === 'lowestEfficiency' ? efficiency : r.rule === 'highestWastedBytes' ? reclaimableBytes : userReclaimableRatio;
    if (r.threshold === null) return {...r, status: 'disabled', actual, message: 'disabled'};
    let failed: string | undefined;
    if (r.rule === 'lowestEfficiency' && r.threshold > actual) failed = `image efficiency is too low (efficiency=${shortRatio(actual)} < threshold=${r.value})`;
    if (r.rule === 'highestWastedBytes' && actual > r.threshold) failed = `too many bytes reclaimable (reclaimable-bytes=${actual} > threshold=${r.threshold})`;
    if (r.rule === 'highestUserWastedPercent' && actual > r.threshold) failed = `too many bytes reclaimable, relative to the bytes the layers above the base add (user-reclaimable=${shortRatio(actual)} > threshold=${r.value})`;
    return failed ? {...r, status: 'fail', actual, message: failed} : {...r, status: 'pass', actual, message: r.value};
  });
  return {pass: out.every((r) => r.status !== 'fail'), configFile, rules: out};
}

/**
 * Reads a dive CI config. `required`: a missing file is an error (an explicit --ci-config); else
 * undefined (the default `.dive-ci`, read when present, as dive does). Unknown keys are reported
 * through `warn`.
 */
export async function loadCiConfig(file: string, options: {required: boolean; warn?: (message: string) => void}): Promise<CiValues | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !options.required) return undefined;
    throw ioError(e, file);
  }
  return parseCiConfig(text, file, options.warn);
}

/** The rule values of a dive CI config (YAML; see parseSimpleYaml for the subset read). */
export function parseCiConfig(text: string, where: string, warn?: (message: string) => void): CiValues {
  const doc = parseSimpleYaml(text, where);
  const rules = doc.get('rules');
  let section: YamlMap;
  if (rules instanceof Map) section = rules;
  else if (rules === undefined || rules === null) {
    // Not dive's shape, but unambiguous: rule keys at the top level.
    section = new Map([...doc].filter(([k]) => KEYS[normalKey(k)] !== undefined));
  } else throw new UsageError(`${where}: "rules" must be a mapping of rule names to values`);
  const out: CiValues = {};
  for (const [key, value] of section) {
    const rule = KEYS[normalKey(key)];
    if (!rule) {
      warn?.(`${where}: unknown CI rule "${key}" ignored (known: ${CI_RULES.join(', ')})`);
      continue;
    }
    if (value instanceof Map) throw new UsageError(`${where}: rules.${key} must be a value, not a mapping`);
    out[rule] = value ?? '';
  }
  return out;
}

type YamlValue = string | null | YamlMap;
interface YamlMap extends Map<string, YamlValue> {}

/**
 * The YAML a dive config uses: nested block mappings of `key: value`, comments, plain, 'single'
 * and "double" quoted scalars, flow mappings `{a: 1, b: 2}`, a leading `---`. Sequences and
 * anything else are refused with the line they are on (a usage error), never guessed at.
 */
export function parseSimpleYaml(text: string, where: string): YamlMap {
  const root: YamlMap = new Map();
  // indent -1: not known until the mapping's first key.
  const stack: Array<{indent: number; map: YamlMap}> = [{indent: -1, map: root}];
  let pending: {map: YamlMap; key: string; indent: number} | undefined;
  for (const [i, raw] of text.replace(/^\uFEFF/, '').split(/\r?\n/).entries()) {
    const at = `${where}:${i + 1}`;
    const line = stripComment(raw).replace(/\s+$/, '');
    if (line.trim() === '') continue;
    const lead = line.slice(0, line.length - line.trimStart().length);
    if (lead.includes('\t')) throw new UsageError(`${at}: tabs cannot indent YAML`);
    const indent = lead.length;
    const body = line.trim();
    if (indent === 0 && (body === '---' || body === '...')) continue;
    if (body.startsWith('- ') || body === '-') throw new UsageError(`${at}: a YAML list is not expected in a CI config`);
    const m = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^:{}[\]#,&*!|>'"%@`][^:]*?)\s*:(?:\s+(.*))?$/.exec(body);
    if (!m) throw new UsageError(`${at}: expected "key: value"`);
    const key = unquote(m[1]!, at);
    const rest = m[2]?.trim() ?? '';
    if (pending && indent > pending.indent) {
      const child: YamlMap = new Map();
      pending.map.set(pending.key, child);
      stack.push({indent, map: child});
      pending = undefined;
    } else {
      if (pending) pending.map.set(pending.key, null);
      pending = undefined;
      while (stack.length > 1 && indent < stack.at(-1)!.indent) stack.pop();
      const top = stack.at(-1)!;
      if (top.indent === -1) top.indent = indent;
      if (indent !== top.indent) throw new UsageError(`${at}: inconsistent indentation`);
    }
    const map = stack.at(-1)!.map;
    if (rest === '') pending = {map, key, indent};
    else map.set(key, scalarOrFlow(rest, at));
  }
  if (pending) pending.map.set(pending.key, null);
  return root;
}

function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}

function unquote(text: string, at: string): string {
  if (text.startsWith("'")) {
    if (!text.endsWith("'") || text.length < 2) throw new UsageError(`${at}: unterminated quoted value`);
    return text.slice(1, -1).replace(/''/g, "'");
  }
  if (text.startsWith('"')) {
    if (!text.endsWith('"') || text.length < 2) throw new UsageError(`${at}: unterminated quoted value`);
    try {
      return JSON.parse(text) as string;
    } catch {
      throw new UsageError(`${at}: bad escape in ${text}`);
    }
  }
  return text;
}

function scalarOrFlow(text: string, at: string): YamlValue {
  if (text.startsWith('{')) {
    if (!text.endsWith('}')) throw new UsageError(`${at}: unterminated flow mapping`);
    const map: YamlMap = new Map();
    const inner = text.slice(1, -1).trim();
    if (inner === '') return map;
    for (const part of inner.split(',')) {
      const m = /^\s*("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^:]+?)\s*:\s*(.*?)\s*$/.exec(part);
      if (!m) throw new UsageError(`${at}: expected "key: value" in a flow mapping`);
      map.set(unquote(m[1]!, at), scalarOrFlow(m[2]!, at));
    }
    return map;
  }
  if (text.startsWith('[') || text.startsWith('&') || text.startsWith('*') || text.startsWith('!') || text.startsWith('|') || text.startsWith('>')) {
    throw new UsageError(`${at}: only plain or quoted values are expected in a CI config`);
  }
  if (text === '~' || text === 'null' || text === 'Null' || text === 'NULL') return null;
  return unquote(text, at);
}

/** JUnit XML for CI systems: one test case per rule (a disabled rule is skipped). */
export function junitReport(ci: CiResult, result: AnalyzeResult, name: string): string {
  const esc = (s: string): string =>
    s
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;');
  const failures = ci.rules.filter((r) => r.status === 'fail').length;
  const skipped = ci.rules.filter((r) => r.status === 'disabled').length;
  const t = result.totals;
  const counts = `tests="${ci.rules.length}" failures="${failures}" errors="0" skipped="${skipped}"`;
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="ferry analyze" ${counts}>`,
    `  <testsuite name="${esc(`ferry analyze ${name}`)}" ${counts}>`,
    '    <properties>',
    `      <property name="image" value="${esc(result.image.configDigest)}"/>`,
    `      <property name="efficiency" value="${t.efficiency}"/>`,
    `      <property name="reclaimableBytes" value="${t.reclaimableBytes}"/>`,
    `      <property name="userReclaimableRatio" value="${t.userReclaimableRatio}"/>`,
    `      <property name="duplicateBytes" value="${t.duplicateBytes}"/>`,
    ...(ci.configFile ? [`      <property name="configFile" value="${esc(ci.configFile)}"/>`] : []),
    '    </properties>',
  ];
  for (const r of ci.rules) {
    const open = `    <testcase classname="ferry.analyze.ci" name="${r.rule}">`;
    if (r.status === 'pass') lines.push(`    <testcase classname="ferry.analyze.ci" name="${r.rule}"/>`);
    else if (r.status === 'disabled') lines.push(open, '      <skipped message="disabled"/>', '    </testcase>');
    else lines.push(open, `      <failure message="${esc(r.message)}" type="${r.rule}">${esc(`${r.message} (threshold from ${r.from}: ${r.value})`)}</failure>`, '    </testcase>');
  }
  lines.push('  </testsuite>', '</testsuites>', '');
  return lines.join('\n');
}
