/**
 * Runs the built CLI on a corpus case the way a user would, each run in a sandbox of its own: the
 * case's input, an empty output directory, and a private FERRY_TMPDIR. Afterwards it records what
 * was left anywhere in the sandbox, so a test can prove that a failure leaves nothing behind and that
 * nothing was written outside the destination.
 */
import {spawn} from 'node:child_process';
import {existsSync, lstatSync, mkdirSync, readdirSync, symlinkSync} from 'node:fs';
import path from 'node:path';
import {requireBuiltCli, ROOT} from '../helpers/cli.js';
import type {HostileCase} from './corpus.js';

export interface Run {
  command: string;
  args: string[];
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Files left in FERRY_TMPDIR. */
  tempLeft: string[];
  /** Files in the output directory (where a writer's destination lives). */
  outputs: string[];
  /** Files that appeared in the sandbox outside the output and temp directories. */
  strays: string[];
  /** Where the run happened (for a follow-up command on its output). */
  sandbox: string;
  milliseconds: number;
}

/** How each command is asked to read `source` (and, for writers, where to put its result). */
export const COMMAND_ARGS: Record<string, (source: string) => string[]> = {
  inspect: (s) => ['inspect', s],
  verify: (s) => ['verify', s],
  'verify --json': (s) => ['verify', '--json', s],
  convert: (s) => ['convert', s, 'oci-archive:out/result.tar'],
  squash: (s) => ['squash', s, 'oci-archive:out/result.tar'],
  export: (s) => ['export', s, 'out/rootfs.tar'],
  ls: (s) => ['ls', s],
  cat: (s) => ['cat', s, '/etc/passwd'],
  analyze: (s) => ['analyze', s],
  manifest: (s) => ['manifest', s],
  config: (s) => ['config', s],
  // import reads a rootfs tar (the cases given as rootfs:PATH) and writes an image.
  import: (s) => ['import', s.replace(/^rootfs:/, ''), 'oci-archive:out/result.tar', '--tag', 'imported:1'],
};

/** Whether a command reads this kind of input at all (import takes only rootfs tars). */
export function appliesTo(command: string, source: string): boolean {
  return command !== 'import' || source.startsWith('rootfs:');
}

/** The commands of COMMAND_ARGS that exist in this tree (others are still being written). */
export function availableCommands(): string[] {
  return Object.keys(COMMAND_ARGS).filter((c) => {
    const name = c.split(' ')[0]!;
    return existsSync(path.join(ROOT, 'commands', `${name}.ts`)) && existsSync(path.join(ROOT, 'dist', 'commands', `${name}.js`));
  });
}

export const WRITERS = new Set(['convert', 'squash', 'export', 'import']);
/** Commands that work on one image and need --image when an archive holds several. */
export const SINGLE_IMAGE = new Set(['squash', 'export', 'ls', 'cat', 'analyze', 'manifest', 'config']);

function listFiles(root: string, base = root): string[] {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  for (const name of readdirSync(root)) {
    const full = path.join(root, name);
    out.push(path.relative(base, full));
    if (lstatSync(full).isDirectory()) out.push(...listFiles(full, base));
  }
  return out.sort();
}

/**
 * Runs one command in a fresh sandbox that links to the case's input (the corpus itself must stay
 * unchanged: the caller checks it at the end). `inputs` maps sandbox names to the files they link to.
 */
export function runCase(c: HostileCase, inputs: Record<string, string>, sandboxRoot: string, command: string, args: string[] = COMMAND_ARGS[command]!(c.source), timeoutMs = 120_000): Promise<Run> {
  const sandbox = path.join(sandboxRoot, `${c.id}--${command}`);
  mkdirSync(sandbox, {recursive: true});
  for (const [name, target] of Object.entries(inputs)) symlinkSync(target, path.join(sandbox, name));
  const started = Date.now();
  const before = new Set(listFiles(sandbox));
  const temp = path.join(sandbox, '.ferry-tmp');
  mkdirSync(temp);
  mkdirSync(path.join(sandbox, 'out'));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [requireBuiltCli(), ...args], {cwd: sandbox, env: userEnv({FERRY_TMPDIR: temp, ...c.env}), stdio: ['ignore', 'pipe', 'pipe']});
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => stdout.push(d));
    child.stderr.on('data', (d: Buffer) => stderr.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      const after = listFiles(sandbox);
      resolve({
        command,
        args,
        status,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        tempLeft: listFiles(temp),
        outputs: listFiles(path.join(sandbox, 'out')),
        strays: after.filter((f) => !before.has(f) && f !== '.ferry-tmp' && f !== 'out' && !f.startsWith(`.ferry-tmp${path.sep}`) && !f.startsWith(`out${path.sep}`)),
        sandbox,
        milliseconds: Date.now() - started,
      });
    });
  });
}

/**
 * The environment a user's shell would give: no FERRY_DEBUG, and no NODE_ENV=test from vitest (oclif
 * then looks for TypeScript sources, which doubles its start-up time).
 */
export function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {...process.env, FERRY_DEBUG: '', ...extra};
  delete env.NODE_ENV;
  return env;
}

/** The top-level names of a case directory, as sandbox inputs. */
export function inputsOf(caseDir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(caseDir).map((n) => [n, path.join(caseDir, n)]));
}

/** Every file under `root` with its size and mtime, to prove nothing changed. */
export function snapshot(root: string): string[] {
  return listFiles(root).map((f) => {
    const s = lstatSync(path.join(root, f));
    return `${f} ${s.size} ${s.mtimeMs}`;
  });
}

/** Lines of stderr (without the trailing newline). */
export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

/** A stack trace or an uncaught JavaScript error leaking to the user. */
export function leaksInternals(stderr: string): boolean {
  return /^\s+at .+[:(]/m.test(stderr) || /\b(TypeError|ReferenceError|RangeError|SyntaxError|AssertionError|Unhandled|ERR_[A-Z_]+)\b/.test(stderr) || /node:internal/.test(stderr);
}
