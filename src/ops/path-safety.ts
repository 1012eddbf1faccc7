import path from 'node:path';
import {escapesRoot} from '../tar/walk.js';
import type {TarEntry} from '../tar/walk.js';

/**
 * Why an entry would reach outside the image root, or undefined. Docker's layer applier
 * (pkg/archive createTarFile/UnpackLayer) is the reference, and ferry is at least as strict:
 * - a name whose cleaned form climbs out (`../x`, `a/../../x`): docker refuses ("is outside of"),
 *   ferry too; an absolute name: docker joins it under the root, ferry refuses it;
 * - a hardlink target, taken from the image root: docker refuses one that climbs out ("invalid
 *   hardlink"), ferry too (an absolute target is read from the root, as docker does);
 * - a relative symlink target, taken from the link's directory: docker refuses one that climbs out
 *   ("invalid symlink"), ferry too. Absolute symlink targets are fine: they are resolved inside the
 *   container's root at run time (`/bin -> usr/bin`, `/etc/mtab -> /proc/mounts`).
 */
export function entryPathProblem(entry: Pick<TarEntry, 'name' | 'type' | 'linkname'>): string | undefined {
  if (entry.name.startsWith('/')) return `entry "${entry.name}" has an absolute path`;
  if (escapesRoot(entry.name)) return `entry "${entry.name}" escapes the image root`;
  if (entry.name.includes('\0')) return `entry "${entry.name}" contains a NUL byte`;
  if (entry.type === 'hardlink' && (entry.linkname.startsWith('/') ? escapesRoot(entry.linkname.slice(1)) : escapesRoot(entry.linkname))) {
    return `hardlink "${entry.name}" points outside the image root ("${entry.linkname}")`;
  }
  if (entry.type === 'symlink' && !entry.linkname.startsWith('/') && escapesRoot(path.posix.join(path.posix.dirname(entry.name.replace(/\/+$/, '')), entry.linkname))) {
    return `symlink "${entry.name}" points outside the image root ("${entry.linkname}")`;
  }
  return undefined;
}
