import {escapesRoot} from '../tar/walk.js';
import type {TarEntry} from '../tar/walk.js';

/**
 * Why an entry would land outside the image root, or undefined. Docker's applier refuses `..`
 * breakouts and joins absolute names under the root; ferry is stricter and refuses both.
 * Symlinks may point anywhere (they are never followed while applying); hardlinks may not.
 */
export function entryPathProblem(entry: Pick<TarEntry, 'name' | 'type' | 'linkname'>): string | undefined {
  if (entry.name.startsWith('/')) return `entry "${entry.name}" has an absolute path`;
  if (escapesRoot(entry.name)) return `entry "${entry.name}" escapes the image root`;
  if (entry.name.includes('\0')) return `entry "${entry.name}" contains a NUL byte`;
  if (entry.type === 'hardlink' && (entry.linkname.startsWith('/') ? escapesRoot(entry.linkname.slice(1)) : escapesRoot(entry.linkname))) {
    return `hardlink "${entry.name}" points outside the image root ("${entry.linkname}")`;
  }
  return undefined;
}
