import {printable} from '../../errors.js';
import {formatPlatform} from '../../model/platform.js';
import {humanSize} from '../format.js';
import type {AnalyzeResult, HiddenCopyReport} from './analyze.js';
import type {CiResult} from './ci.js';
import {kebab} from './ci.js';

const percent = (x: number): string => `${(x * 100).toFixed(1)}%`;
const oneLine = (s: string | null, max: number): string => {
  const t = (s ?? '').replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
};
const both = (bytes: number): string => (bytes < 1024 ? `${bytes} B` : `${humanSize(bytes)} (${bytes.toLocaleString('en-US')} bytes)`);

function describeCopy(c: HiddenCopyReport): string {
  const how =
    c.cause === 'removed'
      ? 'removed'
      : c.cause === 'opaque'
        ? 'under an opaque directory'
        : c.rewrite === 'attributes'
          ? `rewritten with the same content${c.changed.length > 0 ? ` (${c.changed.join(', ')} changed)` : ''}`
          : c.rewrite === 'content'
            ? 'overwritten with new content'
            : c.rewrite === 'same-size'
              ? 'overwritten (same size; content not compared)'
              : c.rewrite === 'link'
                ? 'replaced by a hard link'
                : 'replaced by another type';
  return `L${c.layer} ${how} in L${c.hiddenBy}`;
}

/** The readable report `ferry analyze` prints without --json. */
export function renderAnalysis(r: AnalyzeResult, location: string): string {
  const t = r.totals;
  const name = r.image.names[0] ?? r.image.configDigest.slice(0, 19);
  const lines: string[] = [];
  lines.push(`image:        ${name} (${formatPlatform(r.image.platform)}) in ${location}`);
  lines.push(`image ID:     ${r.image.configDigest}`);
  lines.push(`layers:       ${t.layers}: ${humanSize(t.compressedBytes)} stored, ${humanSize(t.uncompressedBytes)} uncompressed`);
  lines.push(`file bytes:   ${both(t.storedBytes)} in ${t.storedFiles} bodies across the layers; the final image shows ${both(t.finalBytes)} in ${t.finalFiles} files`);
  lines.push(`reclaimable:  ${both(t.reclaimableBytes)} in ${t.reclaimableFiles} hidden ${t.reclaimableFiles === 1 ? 'copy' : 'copies'} (never the copy the image keeps)`);
  const c = r.reclaimable.byCause;
  const w = r.reclaimable.byRewrite;
  if (t.reclaimableBytes > 0) {
    const parts = [`overwritten ${humanSize(c.overwritten)}`];
    if (w.attributes > 0) parts[0] += ` (${humanSize(w.attributes)} same content, attributes only)`;
    parts.push(`removed ${humanSize(c.removed)}`, `under opaque directories ${humanSize(c.opaque)}`);
    lines.push(`              ${parts.join('; ')}`);
  }
  lines.push(`efficiency:   ${percent(t.efficiency)} (final / stored file bytes); reclaimable ${percent(t.userReclaimableRatio)} of the bytes above layer 0`);
  lines.push(`duplicates:   ${t.duplicateBytes > 0 ? `${both(t.duplicateBytes)} in ${r.duplicates.count} group(s) of identical files at several final paths (not counted as reclaimable)` : 'none (no identical non-empty files at several final paths)'}`);

  lines.push('', 'layers:');
  lines.push(`  ${'#'.padStart(3)}  ${'stored'.padStart(10)}  ${'uncompr.'.padStart(10)}  ${'added'.padStart(6)} ${'changed'.padStart(7)} ${'removed'.padStart(7)}  ${'file bytes'.padStart(10)}  ${'reclaim.'.padStart(10)}  ${'hides'.padStart(10)}  created by`);
  for (const l of r.layers) {
    lines.push(
      `  ${String(l.index).padStart(3)}  ${humanSize(l.compressedBytes).padStart(10)}  ${humanSize(l.uncompressedBytes).padStart(10)}  ${String(l.files.added).padStart(6)} ${String(l.files.changed).padStart(7)} ${String(l.files.removed).padStart(7)}  ${humanSize(l.storedBytes).padStart(10)}  ${humanSize(l.reclaimableBytes).padStart(10)}  ${humanSize(l.hidesBytes).padStart(10)}  ${oneLine(l.createdBy, 60)}`,
    );
  }

  if (r.reclaimable.paths.length > 0) {
    lines.push('', r.reclaimable.paths.length === 1 ? 'top path by reclaimable bytes:' : `top ${r.reclaimable.paths.length} paths by reclaimable bytes:`);
    for (const p of r.reclaimable.paths) {
      const kept = p.final ? `; kept copy in L${p.final.layer}` : '; gone from the final image';
      lines.push(`  ${humanSize(p.bytes).padStart(10)}  ${p.path}  ${p.copies.map(describeCopy).join(', ')}${kept}`);
    }
  }
  if (r.reclaimable.hidingEntries.length > 0) {
    lines.push('', 'what hid them:');
    for (const e of r.reclaimable.hidingEntries) {
      const what = e.cause === 'removed' ? 'removed' : e.cause === 'opaque' ? 'made opaque' : 'overwrote';
      lines.push(`  ${humanSize(e.bytes).padStart(10)}  L${e.layer} ${what} ${e.path} (${e.files} file${e.files === 1 ? '' : 's'})`);
    }
  }
  if (r.duplicates.groups.length > 0) {
    lines.push('', 'identical files at several final paths:');
    for (const g of r.duplicates.groups) lines.push(`  ${humanSize(g.reclaimableBytes).padStart(10)}  ${g.copies} × ${humanSize(g.bytesEach)} sha256:${g.sha256.slice(0, 12)}  ${g.paths.join(' ')}`);
  }

  lines.push('', 'squash (uncompressed layer bytes; predicted):');
  lines.push(`  ${'--from-layer'.padStart(12)}  ${'merges'.padStart(9)}  ${'before'.padStart(10)}  ${'after'.padStart(10)}  saves`);
  for (const o of r.squash.options) {
    const saves = o.savedBytes >= 0 ? `${humanSize(o.savedBytes)}${o.beforeBytes > 0 ? ` (${percent(o.savedBytes / o.beforeBytes)})` : ''}` : `grows ${humanSize(-o.savedBytes)}`;
    const mark = r.squash.best?.fromLayer === o.fromLayer ? '  <- best' : '';
    lines.push(`  ${String(o.fromLayer).padStart(12)}  ${`${o.layers} layer${o.layers === 1 ? '' : 's'}`.padStart(9)}  ${humanSize(o.beforeBytes).padStart(10)}  ${humanSize(o.afterBytes).padStart(10)}  ${saves}${mark}`);
  }
  const best = r.squash.best;
  const keeps = !best || best.fromLayer === 0 ? '' : best.fromLayer === 1 ? ' and keeps layer 0 as it is' : ` and keeps layers 0..${best.fromLayer - 1} as they are`;
  lines.push(best ? `  best: ferry squash --from-layer ${best.fromLayer} (saves ${humanSize(best.savedBytes)}${keeps})` : '  best: none (no squash makes the image smaller)');

  const h = r.hashing;
  lines.push(
    '',
    h.enabled
      ? h.files > 0
        ? `content hashes: ${h.files} file(s), ${humanSize(h.bytes)}, read to tell ${h.rewrites} same-size rewrite(s) apart and to compare ${h.duplicateCandidates} final file(s) sharing a size; everything else from tar headers`
        : 'content hashes: none needed (tar headers only)'
      : 'content hashes: off (--no-hash): same-size rewrites are not classified and duplicates are not looked for',
  );
  // Names come from a stranger's archive: control characters are shown as \xNN, never sent to the terminal.
  return lines.map(printable).join('\n');
}

/** dive-style CI verdict: one line per rule, then the tally. */
export function renderCi(ci: CiResult): string {
  const lines = ['', `CI rules${ci.configFile ? ` (config: ${ci.configFile})` : ''}:`];
  for (const r of ci.rules) {
    const tag = r.status === 'pass' ? 'PASS' : r.status === 'fail' ? 'FAIL' : 'SKIP';
    lines.push(`  ${tag}  ${r.rule} (${r.status === 'fail' ? r.message : r.value}; from ${r.from === 'flag' ? `--${kebab(r.rule)}` : r.from})`);
  }
  const n = (s: string): number => ci.rules.filter((r) => r.status === s).length;
  lines.push(`${ci.pass ? 'PASS' : 'FAIL'} [pass:${n('pass')} fail:${n('fail')} skip:${n('disabled')}]`);
  // Names come from a stranger's archive: control characters are shown as \xNN, never sent to the terminal.
  return lines.map(printable).join('\n');
}
