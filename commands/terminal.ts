import {UsageError} from '../src/errors.js';

/** Everything on stdin as text (a password piped in), capped: a secret is not a file. */
export async function readStdinText(stdin: NodeJS.ReadStream, limit = 64 * 1024): Promise<string> {
  let text = '';
  for await (const chunk of stdin) {
    text += String(chunk);
    if (text.length > limit) throw new UsageError(`stdin: more than ${limit} bytes; expected a password`);
  }
  return text;
}

/** One line typed on the terminal, not echoed when `secret` (a password prompt, as docker login does). */
export function readSecretFromTerminal(prompt: string, secret: boolean): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let line = '';
    const wasRaw = stdin.isRaw;
    if (secret) stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    const done = (error?: Error): void => {
      stdin.off('data', onData);
      if (secret) stdin.setRawMode(wasRaw);
      stdin.pause();
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(line);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new UsageError('interrupted'));
        if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1);
        else if (!secret || ch >= ' ') line += ch;
      }
    };
    stdin.on('data', onData);
    stdin.resume();
  });
}
