import type {Hook} from '@oclif/core';

/** Edit distance (insertions, deletions, substitutions, transpositions of neighbours). */
function distance(a: string, b: string): number {
  const d = Array.from({length: a.length + 1}, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** "X is not a ferry command; did you mean …?" for a word that names no command. */
export function notACommand(word: string, ids: readonly string[]): string {
  const scored = ids.map((id) => ({id, d: distance(word, id)})).filter((s) => s.d <= Math.max(2, Math.floor(word.length / 3)));
  scored.sort((x, y) => x.d - y.d || x.id.localeCompare(y.id));
  const suggestion = scored.length > 0 ? `; did you mean ${scored.slice(0, 2).map((s) => `"${s.id}"`).join(' or ')}?` : '';
  return `"${word}" is not a ferry command${suggestion} (ferry help lists them)`;
}

/**
 * An unknown command: one `ferry:` line naming it and the nearest commands, exit 2 (a usage error),
 * like the error of every command (commands/base.ts). bin/run.js prints it.
 */
const hook: Hook<'command_not_found'> = async function (options) {
  // With topicSeparator ' ', `ferry convrt x` arrives as the id "convrt:x": the first word is the command.
  const error = new Error(notACommand(options.id.split(':')[0]!, options.config.commandIDs));
  Object.assign(error, {oclif: {exit: 2}});
  throw error;
};

export default hook;
