import {isArtifact, isImageIndex, type ArchiveEntry, type Image, type Layer, type Node} from './image.js';

/**
 * Entries with some layers swapped for others with the same diffID (a recompressed blob, a fetched
 * copy of a remote one), by blob digest; shared nodes stay shared, and the primary map (which image
 * of an index docker's manifest.json lists) follows the swap.
 */
export function replaceLayers(entries: readonly ArchiveEntry[], primary: ReadonlyMap<ArchiveEntry, Image>, replaced: ReadonlyMap<string, Layer>): {entries: ArchiveEntry[]; primary: Map<ArchiveEntry, Image>} {
  const memo = new Map<Node, Node>();
  const swap = <T extends Node>(node: T): T => {
    const done = memo.get(node);
    if (done) return done as T;
    let next: Node;
    if (isArtifact(node)) next = node;
    else if (isImageIndex(node)) next = {document: node.document, children: node.children.map((c) => ({...c, target: c.target ? swap(c.target) : null}))};
    else next = node.layers.some((l) => replaced.has(l.descriptor.digest)) ? {...node, layers: node.layers.map((l) => replaced.get(l.descriptor.digest) ?? l)} : node;
    memo.set(node, next);
    return next as T;
  };
  const out: ArchiveEntry[] = [];
  const nextPrimary = new Map<ArchiveEntry, Image>();
  for (const entry of entries) {
    const next = {...entry, root: swap(entry.root)};
    const p = primary.get(entry);
    if (p) nextPrimary.set(next, swap(p));
    out.push(next);
  }
  return {entries: out, primary: nextPrimary};
}
