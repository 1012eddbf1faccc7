/**
 * Running a process without blocking the event loop: the fake registries, token servers, proxies and
 * daemons that tests serve from their own process must keep answering it (a spawnSync'd peer would wait
 * for them forever). Killed by its own pid after `timeoutMs`, never by name.
 */
import {spawn} from 'node:child_process';

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

export interface ExecOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  input?: string | Buffer;
  timeoutMs?: number;
}

export async function execAsync(cmd: string, args: string[], options: ExecOptions = {}): Promise<ExecResult> {
  return await new Promise<ExecResult>((resolve, reject) => {
    const child = spawn(cmd, args, {stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: options.env ?? process.env, ...(options.cwd ? {cwd: options.cwd} : {})});
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    // Piped just above (the conditional stdin widens the stream types to nullable).
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    if (options.input !== undefined && child.stdin) {
      child.stdin.on('error', () => {}); // a child that exits without reading its input
      child.stdin.end(options.input);
    }
    const timer = setTimeout(() => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    }, options.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({code, signal, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes});
    });
  });
}
