import {FerryError} from '../errors.js';

/**
 * Replaces the values of some top-level keys of a JSON object in place, leaving every other byte as
 * it was (key order, spacing, number spelling, escapes); keys not present are appended.
 */
export function replaceTopLevelValues(bytes: Buffer, values: Record<string, unknown>): Buffer {
  const text = bytes.toString('utf8');
  const spans = topLevelSpans(text);
  const edits: Array<{start: number; end: number; text: string}> = [];
  const missing = new Set(Object.keys(values));
  for (const span of spans) {
    if (!Object.hasOwn(values, span.key)) continue;
    edits.push({start: span.valueStart, end: span.valueEnd, text: JSON.stringify(values[span.key])});
    missing.delete(span.key);
  }
  if (missing.size > 0) {
    const close = text.lastIndexOf('}');
    const added = [...missing].map((k) => `${JSON.stringify(k)}:${JSON.stringify(values[k])}`).join(',');
    edits.push({start: close, end: close, text: `${spans.length > 0 ? ',' : ''}${added}`});
  }
  let out = text;
  for (const edit of edits.sort((a, b) => b.start - a.start)) out = out.slice(0, edit.start) + edit.text + out.slice(edit.end);
  return Buffer.from(out, 'utf8');
}

interface Span {
  key: string;
  valueStart: number;
  valueEnd: number;
}

/** Key and value positions of a JSON object's top level (the document was already parsed once). */
function topLevelSpans(text: string): Span[] {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  };
  const skipString = (): void => {
    i++; // opening quote
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
  };
  const skipValue = (): void => {
    const c = text[i];
    if (c === '"') return skipString();
    if (c === '{' || c === '[') {
      let depth = 0;
      while (i < text.length) {
        const d = text[i]!;
        if (d === '"') {
          skipString();
          continue;
        }
        if (d === '{' || d === '[') depth++;
        else if (d === '}' || d === ']') {
          depth--;
          if (depth === 0) {
            i++;
            return;
          }
        }
        i++;
      }
      return;
    }
    while (i < text.length && !',}] \t\r\n'.includes(text[i]!)) i++;
  };
  ws();
  if (text[i] !== '{') throw new FerryError('BAD_JSON', 'image config is not a JSON object');
  i++;
  const spans: Span[] = [];
  for (;;) {
    ws();
    if (text[i] === '}' || i >= text.length) return spans;
    const keyStart = i;
    skipString();
    const key = JSON.parse(text.slice(keyStart, i)) as string;
    ws();
    i++; // ':'
    ws();
    const valueStart = i;
    skipValue();
    spans.push({key, valueStart, valueEnd: i});
    ws();
    if (text[i] === ',') i++;
  }
}
