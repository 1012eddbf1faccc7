import path from 'node:path';
import {UsageError} from '../errors.js';
import type {ContainerConfigChanges} from './empty.js';

/** What `docker import --change` / `docker commit --change` accept, plus STOPSIGNAL (Docker ≥ 23). */
export const CHANGE_INSTRUCTIONS = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'USER', 'VOLUME', 'WORKDIR', 'STOPSIGNAL'] as const;

/**
 * Applies Dockerfile instructions in order to an empty container config, as Docker's builder
 * dispatches them: later instructions override earlier ones; ENV and LABEL merge by key. Exec (JSON)
 * and shell forms for CMD/ENTRYPOINT (`CMD x` → ["/bin/sh","-c","x"]); `key=value …` and the legacy
 * `key value` form for ENV/LABEL; quotes, backslash escapes and $VAR / ${VAR} (${VAR:-x}, ${VAR:+x})
 * expansion from earlier ENVs in every instruction but CMD and ENTRYPOINT (a shell expands those at
 * run time).
 */
export function parseChanges(changes: readonly string[]): ContainerConfigChanges {
  const config: ContainerConfigChanges = {};
  for (const change of changes) applyChange(config, change);
  return config;
}

function applyChange(config: ContainerConfigChanges, change: string): void {
  const trimmed = change.trim();
  const match = /^(\S+)(?:\s+([\s\S]*))?$/.exec(trimmed);
  if (!match) throw new UsageError(`--change "${change}": empty instruction`);
  const keyword = match[1]!.toUpperCase();
  const rest = (match[2] ?? '').trim();
  const fail = (why: string): never => {
    throw new UsageError(`--change "${change}": ${why}`);
  };
  if (!(CHANGE_INSTRUCTIONS as readonly string[]).includes(keyword)) {
    fail(`${match[1]} is not a supported change instruction (supported: ${CHANGE_INSTRUCTIONS.join(', ')})`);
  }
  const env = envMap(config.Env ?? []);
  const word = (text: string): string => new ShellWords(text, env, fail).word();
  const words = (text: string): string[] => new ShellWords(text, env, fail).words();
  switch (keyword) {
    case 'CMD':
    case 'ENTRYPOINT': {
      const json = jsonArray(rest);
      const value = json ?? (rest === '' ? fail(`${keyword} needs an argument`) : ['/bin/sh', '-c', rest]);
      if (keyword === 'CMD') config.Cmd = value;
      else config.Entrypoint = value;
      return;
    }
    case 'ENV': {
      const pairs = keyValues(rest, word, fail, 'ENV');
      const list = [...(config.Env ?? [])];
      for (const [key, value] of pairs) {
        const at = list.findIndex((e) => e.slice(0, e.indexOf('=') < 0 ? e.length : e.indexOf('=')) === key);
        if (at >= 0) list[at] = `${key}=${value}`;
        else list.push(`${key}=${value}`);
        env.set(key, value);
      }
      config.Env = list;
      return;
    }
    case 'LABEL': {
      const labels = {...(config.Labels ?? {})};
      for (const [key, value] of keyValues(rest, word, fail, 'LABEL')) labels[key] = value;
      config.Labels = labels;
      return;
    }
    case 'EXPOSE': {
      const ports = {...(config.ExposedPorts ?? {})};
      const specs = words(rest);
      if (specs.length === 0) fail('EXPOSE needs at least one port');
      for (const spec of specs) for (const port of expandPorts(spec, fail)) ports[port] = {};
      config.ExposedPorts = ports;
      return;
    }
    case 'VOLUME': {
      const volumes = {...(config.Volumes ?? {})};
      const list = jsonArray(rest) ?? words(rest);
      if (list.length === 0) fail('VOLUME needs at least one path');
      for (const v of list) {
        if (v.trim() === '') fail('VOLUME paths cannot be empty');
        volumes[v] = {};
      }
      config.Volumes = volumes;
      return;
    }
    case 'WORKDIR': {
      const dir = word(rest);
      if (dir === '') fail('WORKDIR needs a path');
      // Docker joins a relative WORKDIR onto the previous one.
      config.WorkingDir = dir.startsWith('/') ? dir : path.posix.join('/', config.WorkingDir ?? '', dir);
      return;
    }
    case 'USER': {
      const user = word(rest);
      if (user === '') fail('USER needs a user name or id');
      config.User = user;
      return;
    }
    case 'STOPSIGNAL': {
      const signal = word(rest);
      if (!/^(SIG)?[A-Z][A-Z0-9+-]*$|^[0-9]+$/.test(signal)) fail(`"${signal}" is not a signal name or number`);
      config.StopSignal = signal;
      return;
    }
  }
}

function envMap(env: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of env) {
    const eq = e.indexOf('=');
    out.set(eq < 0 ? e : e.slice(0, eq), eq < 0 ? '' : e.slice(eq + 1));
  }
  return out;
}

/** `["a","b"]` → the strings; anything that is not a JSON array of strings → undefined (shell form). */
function jsonArray(text: string): string[] | undefined {
  if (!text.startsWith('[')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  } catch {
    // not JSON: Docker treats it as the shell form
  }
  return undefined;
}

/** `k=v k2="v 2"` (each word must hold '='), or the legacy `k value with spaces`. */
function keyValues(rest: string, word: (t: string) => string, fail: (why: string) => never, what: string): Array<[string, string]> {
  if (rest === '') fail(`${what} needs key=value`);
  const raw = splitRawWords(rest);
  if (!raw[0]!.includes('=')) {
    // Legacy form: the first word is the key, the rest of the line (quotes processed) the value.
    const m = /^(\S+)\s+([\s\S]*)$/.exec(rest);
    if (!m) fail(`${what} ${raw[0]} needs a value (write ${raw[0]}=VALUE)`);
    return [[word(m![1]!), word(m![2]!)]];
  }
  return raw.map((token) => {
    const eq = token.indexOf('=');
    if (eq <= 0) fail(`"${token}" is not of the form key=value`);
    const key = word(token.slice(0, eq));
    if (key === '') fail(`"${token}" has an empty key`);
    return [key, word(token.slice(eq + 1))] as [string, string];
  });
}

/** Splits on unquoted whitespace, keeping quotes and escapes in the tokens (Docker's parseWords). */
function splitRawWords(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && quote !== "'" && i + 1 < text.length) {
      current += c + text[++i]!;
      continue;
    }
    if (quote) {
      if (c === quote) quote = undefined;
      current += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      current += c;
      continue;
    }
    if (/\s/.test(c)) {
      if (current !== '') out.push(current);
      current = '';
      continue;
    }
    current += c;
  }
  if (current !== '') out.push(current);
  return out;
}

/** `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`, … (Docker's nat.ParsePortSpecs expands ranges). */
function expandPorts(spec: string, fail: (why: string) => never): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec);
  if (!m) fail(`"${spec}" is not a port (PORT[-PORT][/tcp|udp|sctp])`);
  const from = Number(m![1]);
  const to = m![2] === undefined ? from : Number(m![2]);
  const proto = (m![3] ?? 'tcp').toLowerCase();
  if (from < 1 || to > 65535 || to < from) fail(`"${spec}" is not a valid port or port range`);
  const out: string[] = [];
  for (let p = from; p <= to; p++) out.push(`${p}/${proto}`);
  return out;
}

/**
 * Docker's shell word rules (moby/buildkit frontend/dockerfile/shell): backslash escapes the next
 * character (inside double quotes too), single quotes are literal, $VAR and ${VAR…} expand from the
 * environment outside single quotes; unquoted whitespace separates words.
 */
class ShellWords {
  #i = 0;
  constructor(
    private readonly text: string,
    private readonly env: ReadonlyMap<string, string>,
    private readonly fail: (why: string) => never,
  ) {}

  /** The whole text as one word (whitespace kept). */
  word(): string {
    return this.#scan(false)[0] ?? '';
  }

  words(): string[] {
    return this.#scan(true);
  }

  #scan(split: boolean): string[] {
    const out: string[] = [];
    let current = '';
    let started = false;
    const t = this.text;
    while (this.#i < t.length) {
      const c = t[this.#i]!;
      if (split && /\s/.test(c)) {
        if (started) out.push(current);
        current = '';
        started = false;
        this.#i++;
        continue;
      }
      started = true;
      if (c === '\\') {
        this.#i++;
        if (this.#i < t.length) current += t[this.#i++]!;
        continue;
      }
      if (c === "'") {
        const end = t.indexOf("'", this.#i + 1);
        if (end < 0) this.fail('unmatched single quote');
        current += t.slice(this.#i + 1, end);
        this.#i = end + 1;
        continue;
      }
      if (c === '"') {
        this.#i++;
        for (;;) {
          if (this.#i >= t.length) this.fail('unmatched double quote');
          const d = t[this.#i]!;
          if (d === '"') {
            this.#i++;
            break;
          }
          if (d === '\\') {
            this.#i++;
            if (this.#i < t.length) current += t[this.#i++]!;
            continue;
          }
          if (d === '$') {
            current += this.#variable();
            continue;
          }
          current += d;
          this.#i++;
        }
        continue;
      }
      if (c === '$') {
        current += this.#variable();
        continue;
      }
      current += c;
      this.#i++;
    }
    if (started) out.push(current);
    return out;
  }

  /** At a '$': $NAME, ${NAME}, ${NAME:-word}, ${NAME:+word}; a lone '$' stays. */
  #variable(): string {
    const t = this.text;
    this.#i++; // '$'
    if (t[this.#i] === '{') {
      const close = t.indexOf('}', this.#i);
      if (close < 0) this.fail('missing } in ${…}');
      const body = t.slice(this.#i + 1, close);
      this.#i = close + 1;
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([\s\S]*))?$/.exec(body);
      if (!m) this.fail(`unsupported substitution \${${body}}`);
      const value = this.env.get(m![1]!);
      if (m![2] === '-') return value === undefined || value === '' ? new ShellWords(m![3]!, this.env, this.fail).word() : value;
      if (m![2] === '+') return value === undefined || value === '' ? '' : new ShellWords(m![3]!, this.env, this.fail).word();
      return value ?? '';
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(t.slice(this.#i));
    if (!m) return '$';
    this.#i += m[0].length;
    return this.env.get(m[0]) ?? '';
  }
}
