/** AUFS-style whiteout names used in layer tars (OCI image-spec layer.md; docs/formats.md §5). */
export const WHITEOUT_PREFIX = '.wh.';
/** Names below the root starting with this are AUFS metadata (`.wh..wh.plnk`, `.wh..wh.aufs`), skipped. */
export const WHITEOUT_META_PREFIX = '.wh..wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

export type WhiteoutKind =
  | {kind: 'none'}
  | {kind: 'opaque'}
  | {kind: 'whiteout'; target: string}
  /** `.wh.` alone, `.wh..` and `.wh...`: name nothing (see apply.ts for why they are ignored). */
  | {kind: 'invalid'};

/** Classifies a member's base name. */
export function whiteoutKind(base: string): WhiteoutKind {
  if (!base.startsWith(WHITEOUT_PREFIX)) return {kind: 'none'};
  if (base === OPAQUE_MARKER) return {kind: 'opaque'};
  const target = base.slice(WHITEOUT_PREFIX.length);
  if (target === '' || target === '.' || target === '..') return {kind: 'invalid'};
  return {kind: 'whiteout', target};
}
