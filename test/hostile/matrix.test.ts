/**
 * The bad-input matrix: every corpus case × every command that reads archives. A failing command
 * exits 1 with one `ferry: …` line naming the problem and where (verify: one line per problem),
 * prints nothing on stdout, leaves no output and no temp file, and writes nothing outside its
 * destination. inspect reads only JSON and headers, so damage inside layers is invisible to it: the
 * cases say where that is so. Needs `npm run build` (spawns bin/run.js).
 *
 * FERRY_WRITE_DOCS=1 rewrites docs/bad-input.md from this run's messages.
 */
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pLimit from 'p-limit';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ROOT} from '../helpers/cli.js';
import {buildCases, writeCorpus, type HostileCase, type Outcome} from './corpus.js';
import {appliesTo, availableCommands, COMMAND_ARGS, inputsOf, leaksInternals, lines, runCase, SINGLE_IMAGE, snapshot, WRITERS, type Run} from './run.js';

// FERRY_MATRIX_CASES / FERRY_MATRIX_COMMANDS (regular expressions) narrow a run while debugging.
const only = (env: string | undefined, name: string): boolean => env === undefined || new RegExp(env).test(name);
const allCases = (await buildCases()).map((b) => b.spec);
const cases = allCases.filter((c) => only(process.env.FERRY_MATRIX_CASES, c.id));
const commands = availableCommands().filter((c) => only(process.env.FERRY_MATRIX_COMMANDS, c));

let root: string;
let corpusBefore: string[] = [];
let corpusAfter: string[] = [];
const results = new Map<string, Run>();
const key = (c: HostileCase, command: string): string => `${c.id}/${command}`;

function expected(c: HostileCase, command: string): Outcome {
  if (command.startsWith('verify')) return 'fail';
  const override = c.outcomes?.[command];
  if (override) return override;
  // manifest and config read the same JSON documents inspect does, and nothing else.
  if (command === 'inspect' || command === 'manifest' || command === 'config') return c.inspect;
  const writers = c.writers ?? 'fail';
  if (WRITERS.has(command)) return writers;
  return c.readers ?? (writers === 'repair' ? 'ok' : writers);
}

/** The command line for a case: single-image commands name the image when the case holds several. */
function argsFor(c: HostileCase, command: string): string[] {
  const args = COMMAND_ARGS[command]!(c.source);
  return c.image && SINGLE_IMAGE.has(command) ? [...args, '--image', c.image] : args;
}

/** Like Promise.all, but waits for every run to end before failing (none may outlive the cleanup). */
async function settled(work: Array<Promise<unknown>>): Promise<void> {
  const failed = (await Promise.allSettled(work)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'ferry-hostile-'));
  const corpus = path.join(root, 'corpus');
  await writeCorpus(corpus);
  corpusBefore = snapshot(corpus);
  const limit = pLimit(Math.max(2, os.availableParallelism()));
  const sandboxes = path.join(root, 'runs');
  await settled(cases.flatMap((c) => commands.filter((command) => appliesTo(command, c.source)).map((command) => limit(async () => results.set(key(c, command), await runCase(c, inputsOf(path.join(corpus, c.id)), sandboxes, command, argsFor(c, command)))))));
  // A writer's repaired output must itself be sound.
  await settled(
    cases.flatMap((c) =>
      commands
        .filter((command) => appliesTo(command, c.source) && WRITERS.has(command) && expected(c, command) === 'repair')
        .map((command) =>
          limit(async () => {
            const run = results.get(key(c, command))!;
            const out = run.outputs.find((f) => !f.includes(path.sep));
            if (!out) return;
            const target = command === 'export' ? `rootfs:result/${out}` : `result/${out}`; // import and convert write images
            results.set(key(c, `${command}+verify`), await runCase({...c, id: `${c.id}--${command}`}, {result: path.join(run.sandbox, 'out')}, path.join(root, 'reverify'), 'verify', ['verify', target]));
          }),
        ),
    ),
  );
  corpusAfter = snapshot(corpus);
  if (process.env.FERRY_MATRIX_TIMES === '1') {
    const slow = [...results.values()].sort((a, b) => b.milliseconds - a.milliseconds).slice(0, 25);
    for (const r of slow) console.log(`${r.milliseconds} ms  ${r.args.join(' ')}  (${path.basename(r.sandbox)})`);
  }
}, 900_000);

afterAll(() => {
  if (process.env.FERRY_WRITE_DOCS === '1') writeDocs();
  rmSync(root, {recursive: true, force: true});
});

describe('bad-input corpus', () => {
  it('has at least 40 distinct cases, each with a title and an origin', () => {
    expect(allCases.length).toBeGreaterThanOrEqual(40);
    expect(new Set(allCases.map((c) => c.id)).size).toBe(allCases.length);
    for (const c of allCases) expect(c.title.length, c.id).toBeGreaterThan(10);
  });

  it('no command changed or added anything next to its input', () => {
    expect(corpusAfter).toEqual(corpusBefore);
  });

  it('every command ran on every case it takes (a matrix with no runs must not pass)', () => {
    const planned = cases.flatMap((c) => commands.filter((command) => appliesTo(command, c.source)).map((command) => key(c, command)));
    expect(planned.length).toBeGreaterThan(cases.length * 4);
    expect(planned.filter((k) => !results.has(k))).toEqual([]);
  });

  it('docs/bad-input.md lists every case', () => {
    const doc = readFileSync(path.join(ROOT, 'docs', 'bad-input.md'), 'utf8');
    const missing = allCases.filter((c) => !doc.includes(`\`${c.id}\``)).map((c) => c.id);
    expect(missing).toEqual([]);
  });
});

for (const c of cases) {
  describe(`${c.id}: ${c.title}`, () => {
    for (const command of commands.filter((cmd) => appliesTo(cmd, c.source))) {
      const outcome = expected(c, command);
      it(`${command} → ${outcome}`, () => {
        const run = results.get(key(c, command))!;
        const context = `${run.args.join(' ')}\nstatus ${run.status} ${run.signal ?? ''}\nstdout: ${run.stdout.slice(0, 400)}\nstderr: ${run.stderr}`;
        expect(leaksInternals(run.stderr), context).toBe(false);
        expect(run.signal, context).toBeNull();
        expect(run.tempLeft, `temp files left in FERRY_TMPDIR\n${context}`).toEqual([]);
        expect(run.strays, `files written outside the destination\n${context}`).toEqual([]);
        const errLines = lines(run.stderr);
        for (const l of errLines) expect(l, context).toMatch(/^ferry: /);
        const unreadable = command === 'verify --json' && run.stdout !== '' && 'error' in (JSON.parse(run.stdout) as object);
        if (outcome === 'fail' && command === 'verify --json' && run.stdout !== '' && !unreadable) {
          // A readable archive: the report is the JSON on stdout, stderr stays empty.
          expect(run.status, context).toBe(1);
          const report = JSON.parse(run.stdout) as {ok: boolean; problems: string[]};
          expect(report.ok, context).toBe(false);
          expect(report.problems.length, context).toBeGreaterThanOrEqual(1);
          expect(report.problems.join('\n'), context).toMatch(c.names);
          expect(errLines, context).toEqual([]);
        } else if (outcome === 'fail') {
          // An archive it cannot read at all: the one-line error, as every command; verify --json
          // also prints its report with that error as the one problem (issue 10).
          expect(run.status, context).toBe(1);
          if (command === 'verify --json') {
            const report = JSON.parse(run.stdout) as {ok: boolean; problems: string[]};
            expect(report.ok, context).toBe(false);
            expect(report.problems.join('\n'), context).toMatch(c.names);
          } else expect(run.stdout, context).toBe('');
          expect(run.outputs, `output left behind\n${context}`).toEqual([]);
          const problems = errLines.filter((l) => !l.startsWith('ferry: warning: '));
          if (command.startsWith('verify')) expect(problems.length, context).toBeGreaterThanOrEqual(1);
          else expect(errLines, `one line, and no warnings before it\n${context}`).toHaveLength(1);
          expect(problems.join('\n'), context).toMatch(c.names);
        } else {
          expect(run.status, context).toBe(0);
          if (!WRITERS.has(command)) expect(run.stdout.length, context).toBeGreaterThan(0);
          else expect(run.outputs.length, `nothing written\n${context}`).toBeGreaterThan(0);
          if (outcome === 'repair') expect(errLines.some((l) => l.startsWith('ferry: warning: ')), `a repair must say what it did\n${context}`).toBe(true);
          const check = results.get(key(c, `${command}+verify`));
          if (WRITERS.has(command) && outcome === 'repair') {
            expect(check, `no output to verify\n${context}`).toBeDefined();
            expect(check!.status, `the repaired output does not verify\n${check!.stderr}`).toBe(0);
          }
        }
      });
    }
  });
}

/** docs/bad-input.md: each case, what each command does, and verify's exact words. */
function writeDocs(): void {
  if (cases.length !== allCases.length) {
    console.warn('docs/bad-input.md not written: the run was narrowed with FERRY_MATRIX_CASES');
    return;
  }
  const out: string[] = [];
  out.push('# Bad input: every corpus case and what ferry says');
  out.push('');
  out.push('Generated by `FERRY_WRITE_DOCS=1 npx vitest run test/hostile/matrix.test.ts` from the corpus in');
  out.push('`test/hostile/corpus.ts` (built at test time from `fixtures/`; nothing here is committed as a binary).');
  out.push('Each case is run through every command with a private `FERRY_TMPDIR`; the test proves for each that');
  out.push('a failure exits 1 with one `ferry: …` line, prints nothing on stdout, and leaves no output, no temp');
  out.push('file and nothing outside the destination. See "Rules" below for the limits and path policy.');
  out.push('');
  out.push(`Commands run: ${commands.map((c) => `\`${c}\``).join(', ')}. Outcomes: **fail** = exit 1 naming the problem; **ok** = exit 0 (the command never reads the damaged part); **repair** = exit 0 with a \`ferry: warning:\` line and an output that verifies; – = the command does not take this input (\`import\` reads rootfs tars only).`);
  out.push('');
  out.push(`| case | what is broken | origin | ${commands.join(' | ')} | ferry's message (\`verify\`) |`);
  out.push(`|---|---|---|${commands.map(() => '---|').join('')}---|`);
  for (const c of cases) {
    const cells = commands.map((command) => (appliesTo(command, c.source) ? expected(c, command) : '–'));
    const verify = results.get(key(c, 'verify'));
    const message = verify ? lines(verify.stderr).map((l) => `\`${l.replace(/\|/g, '\\|')}\``).join('<br>') : '';
    out.push(`| \`${c.id}\` | ${c.title.replace(/\|/g, '\\|')} | ${c.origin} | ${cells.join(' | ')} | ${message} |`);
  }
  const rulesPath = path.join(ROOT, 'docs', 'bad-input.md');
  const previous = (() => {
    try {
      return readFileSync(rulesPath, 'utf8');
    } catch {
      return '';
    }
  })();
  const rules = previous.includes('\n## Rules') ? previous.slice(previous.indexOf('\n## Rules')) : '\n## Rules\n\n(to be written)\n';
  writeFileSync(rulesPath, `${out.join('\n')}\n${rules}`);
}
