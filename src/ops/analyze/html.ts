import {printable} from '../../errors.js';
import {formatPlatform} from '../../model/platform.js';
import {humanSize} from '../format.js';
import type {AnalyzeResult} from './analyze.js';
import type {CiResult} from './ci.js';
import type {SizeNode} from './sizes.js';
import {squarify, type Rect} from './treemap.js';

/**
 * The picture `ferry analyze --html FILE` writes: one self-contained HTML file (inline CSS, inline
 * SVG drawn here from the analysis, a few lines of inline script for the tooltips; no network, no
 * font or script from elsewhere), so it opens from a USB stick in any browser. The same analysis
 * always gives the same bytes: no clock, no random ids.
 */

/** Tableau 10 without its red, which marks reclaimable bytes. */
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#ff9da7', '#9c755f', '#bab0ac', '#8cd17d'];
export const layerColor = (layer: number): string => (layer < 0 ? '#d0d0d0' : PALETTE[layer % PALETTE.length]!);
const RECLAIM = '#d62728';

const esc = (text: string): string =>
  printable(text).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]!);
const n2 = (x: number): string => (Math.round(x * 100) / 100).toString();
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

const MAP_W = 1200;
const MAP_H = 720;
/** Tiles smaller than this (px²) are drawn as part of a "smaller items" tile. */
const MIN_AREA = 30;
/** Directories smaller than this are drawn as one tile. */
const MIN_DIR_AREA = 900;
const MAX_TILES = 4000;
const HEADER = 14;

interface Tile {
  value: number;
  node?: SizeNode;
  /** A lump of small items: how many, and of what directory. */
  lump?: {count: number; dir: string; reclaimable: number; layer: number};
}

function treemap(root: SizeNode): string {
  const out: string[] = [];
  let tiles = 0;
  const tipAttrs = (path: string, size: string, layer: string, extra = ''): string => `data-p="${esc(path)}" data-s="${esc(size)}" data-l="${esc(layer)}"${extra ? ` data-x="${esc(extra)}"` : ''}`;
  const rect = (r: Rect, attrs: string): string => `<rect x="${n2(r.x)}" y="${n2(r.y)}" width="${n2(r.w)}" height="${n2(r.h)}" ${attrs}/>`;
  const label = (r: Rect, text: string, size = 11): string => {
    const max = Math.floor((r.w - 6) / (size * 0.6));
    if (r.h < size + 3 || max < 3) return '';
    const t = text.length > max ? `${text.slice(0, max - 1)}…` : text;
    return `<text x="${n2(r.x + 3)}" y="${n2(r.y + size)}" font-size="${size}">${esc(t)}</text>`;
  };
  const leaf = (node: SizeNode, r: Rect): void => {
    tiles++;
    if (node.kind === 'hidden') {
      const how = node.cause === 'removed' ? 'removed' : node.cause === 'opaque' ? 'hidden by an opaque directory' : node.rewrite === 'attributes' ? 'rewritten with the same content' : 'overwritten';
      const attrs = tipAttrs(node.path, `${humanSize(node.bytes)} reclaimable (${node.bytes} bytes)`, `stored in layer ${node.layer}, ${how} in layer ${node.hiddenBy}`);
      out.push(`<g class="tile hidden" ${attrs}>${rect(r, `fill="${layerColor(node.layer)}" fill-opacity="0.45"`)}${rect(r, `fill="url(#hatch)" stroke="${RECLAIM}" stroke-width="1"`)}${label(r, node.name)}</g>`);
      return;
    }
    const attrs = tipAttrs(node.path, `${humanSize(node.bytes)} (${node.bytes} bytes)`, `layer ${node.layer}`);
    out.push(`<g class="tile file" ${attrs}>${rect(r, `fill="${layerColor(node.layer)}" stroke="#fff" stroke-width="0.5"`)}${label(r, node.name)}</g>`);
  };
  const lumpTile = (t: Tile, r: Rect): void => {
    tiles++;
    const l = t.lump!;
    const extra = l.reclaimable > 0 ? `${humanSize(l.reclaimable)} of it reclaimable` : '';
    out.push(`<g class="tile lump" ${tipAttrs(`${l.dir} (${l.count} smaller items)`, `${humanSize(t.value)} (${t.value} bytes)`, `mostly layer ${l.layer}`, extra)}>${rect(r, `fill="${layerColor(l.layer)}" fill-opacity="0.7" stroke="#fff" stroke-width="0.5"`)}${l.reclaimable > 0 ? rect(r, `fill="url(#hatch)" fill-opacity="${n2(Math.min(1, l.reclaimable / t.value + 0.2))}"`) : ''}</g>`);
  };
  const dirTile = (node: SizeNode, r: Rect): void => {
    tiles++;
    const extra = node.reclaimable > 0 ? `${humanSize(node.reclaimable)} of it reclaimable` : '';
    out.push(`<g class="tile dir" ${tipAttrs(`${node.path}/`.replace('//', '/'), `${humanSize(node.bytes)} in ${node.files} file(s)`, `mostly layer ${node.layer}${node.gone ? '; removed from the final image' : ''}`, extra)}>${rect(r, `fill="${layerColor(node.layer)}" stroke="#fff" stroke-width="0.5"`)}${node.reclaimable > 0 ? rect(r, `fill="url(#hatch)" fill-opacity="${n2(Math.min(1, node.reclaimable / node.bytes + 0.2))}"`) : ''}${label(r, `${node.name}/`)}</g>`);
  };
  const layoutDir = (node: SizeNode, r: Rect): void => {
    const children = node.children ?? [];
    const scale = (r.w * r.h) / Math.max(1, node.bytes);
    const items: Tile[] = [];
    let lump: Tile | undefined;
    const byLayer = new Map<number, number>();
    for (const c of children) {
      if (c.bytes * scale >= MIN_AREA && tiles + items.length < MAX_TILES) items.push({value: c.bytes, node: c});
      else {
        lump ??= {value: 0, lump: {count: 0, dir: `${node.path}/`.replace('//', '/'), reclaimable: 0, layer: -1}};
        lump.value += c.bytes;
        lump.lump!.count += c.files;
        lump.lump!.reclaimable += c.reclaimable;
        byLayer.set(c.layer, (byLayer.get(c.layer) ?? 0) + c.bytes);
      }
    }
    if (lump) {
      lump.lump!.layer = [...byLayer].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0];
      items.push(lump);
    }
    for (const {item, rect: cr} of squarify(items, r)) {
      if (item.lump) lumpTile(item, cr);
      else if (item.node!.kind !== 'dir') leaf(item.node!, cr);
      else if (cr.w * cr.h < MIN_DIR_AREA || cr.w < 24 || cr.h < HEADER + 10 || tiles >= MAX_TILES) dirTile(item.node!, cr);
      else {
        const d = item.node!;
        tiles++;
        const extra = d.reclaimable > 0 ? `${humanSize(d.reclaimable)} of it reclaimable` : '';
        out.push(`<g class="frame" ${tipAttrs(`${d.path}/`, `${humanSize(d.bytes)} in ${d.files} file(s)`, d.gone ? 'removed from the final image' : `mostly layer ${d.layer}`, extra)}>${rect(cr, `fill="${d.gone ? '#fbe3e3' : '#eef0f3'}" stroke="${d.reclaimable > 0 ? RECLAIM : '#9aa3ad'}" stroke-width="${d.reclaimable > 0 ? 1.2 : 0.6}"`)}${label(cr, `${d.name}/ ${humanSize(d.bytes)}`, 10)}</g>`);
        layoutDir(d, {x: cr.x + 2, y: cr.y + HEADER, w: Math.max(0, cr.w - 4), h: Math.max(0, cr.h - HEADER - 2)});
      }
    }
  };
  if (root.bytes === 0) return `<text x="${MAP_W / 2}" y="${MAP_H / 2}" text-anchor="middle" font-size="16">no file bytes in this image</text>`;
  layoutDir(root, {x: 0, y: 0, w: MAP_W, h: MAP_H});
  return out.join('\n');
}

function layerBars(r: AnalyzeResult): string {
  const rowH = 30;
  const labelW = 70;
  const barW = 760;
  const h = r.layers.length * rowH + 8;
  const max = Math.max(1, ...r.layers.map((l) => l.storedBytes));
  const out: string[] = [];
  for (const l of r.layers) {
    const y = l.index * rowH + 4;
    const kept = (l.keptBytes / max) * barW;
    const lost = (l.reclaimableBytes / max) * barW;
    const tip = `data-p="${esc(`layer ${l.index}: ${(l.createdBy ?? '').replace(/\s+/g, ' ').slice(0, 300)}`)}" data-s="${esc(`${humanSize(l.storedBytes)} of file bytes stored; ${humanSize(l.reclaimableBytes)} reclaimable; ${humanSize(l.compressedBytes)} as stored, ${humanSize(l.uncompressedBytes)} uncompressed`)}" data-l="${esc(`${l.files.added} added, ${l.files.changed} changed, ${l.files.removed} removed; hides ${humanSize(l.hidesBytes)} of lower layers`)}"`;
    out.push(`<g class="bar" ${tip}>`);
    out.push(`<rect x="0" y="${y}" width="${labelW + barW + 360}" height="${rowH - 4}" fill="transparent"/>`);
    out.push(`<rect x="4" y="${y + 4}" width="14" height="14" fill="${layerColor(l.index)}"/><text x="24" y="${y + 16}" font-size="12">L${l.index}</text>`);
    out.push(`<rect x="${labelW}" y="${y + 2}" width="${n2(Math.max(kept, l.keptBytes > 0 ? 1 : 0))}" height="${rowH - 8}" fill="${layerColor(l.index)}"/>`);
    if (l.reclaimableBytes > 0) {
      const at = `x="${n2(labelW + kept)}" y="${y + 2}" width="${n2(Math.max(lost, 1))}" height="${rowH - 8}"`;
      out.push(`<rect ${at} fill="${layerColor(l.index)}" fill-opacity="0.45"/><rect class="reclaim" ${at} fill="url(#hatch)" stroke="${RECLAIM}" stroke-width="1"/>`);
    }
    out.push(`<text x="${n2(labelW + kept + lost + 6)}" y="${y + 16}" font-size="12">${esc(`${humanSize(l.storedBytes)} stored${l.reclaimableBytes > 0 ? `, ${humanSize(l.reclaimableBytes)} reclaimable` : ''}`)}</text>`);
    out.push('</g>');
  }
  return `<svg id="layer-bars" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${labelW + barW + 360} ${h}" width="100%" role="img" aria-label="stored and reclaimable bytes per layer">\n${out.join('\n')}\n</svg>`;
}

const HATCH = `<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff" fill-opacity="0.25"/><line x1="0" y1="0" x2="0" y2="6" stroke="${RECLAIM}" stroke-width="3"/></pattern></defs>`;

const STYLE = `
:root{color-scheme:light}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1d2329;background:#fff}
main{max-width:1240px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:20px;margin:8px 0 2px;word-break:break-all}h2{font-size:16px;margin:26px 0 8px}
.sub{color:#5c6670;margin:0 0 12px;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #d8dde3;border-radius:6px;padding:8px 12px;min-width:150px}
.card b{display:block;font-size:18px}.card span{color:#5c6670;font-size:12px}
.card.bad{border-color:${RECLAIM}}
svg{display:block;background:#fff}
svg text{font-family:inherit;fill:#1d2329;pointer-events:none}
#treemap text{fill:#111}
.tile:hover rect,.bar:hover rect,.frame:hover>rect{stroke:#000;stroke-width:1.5}
.legend{display:flex;flex-wrap:wrap;gap:12px;margin:6px 0;font-size:12px;color:#3b444d}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e4e8ec;padding:4px 8px;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;white-space:nowrap}td.p{word-break:break-all;font-family:ui-monospace,Menlo,Consolas,monospace}
tr.best td{background:#eef7ee;font-weight:600}
.pass{color:#2d7a2d;font-weight:600}.fail{color:${RECLAIM};font-weight:600}.skip{color:#7a838c}
#tip{position:fixed;z-index:10;max-width:520px;background:#1d2329;color:#fff;padding:6px 9px;border-radius:4px;font-size:12px;pointer-events:none;word-break:break-all;box-shadow:0 2px 8px rgba(0,0,0,.25)}
#tip b{display:block;margin-bottom:2px}
`;

// ES5 only, so any browser runs it; it reads data-* attributes and never evaluates text.
const SCRIPT = `
(function () {
  var tip = document.getElementById('tip');
  function place(e) {
    var r = tip.getBoundingClientRect();
    var x = e.clientX + 14, y = e.clientY + 14;
    if (x + r.width > window.innerWidth - 4) x = Math.max(4, e.clientX - r.width - 10);
    if (y + r.height > window.innerHeight - 4) y = Math.max(4, e.clientY - r.height - 10);
    tip.style.left = x + 'px';
    tip.style.top = y + 'px';
  }
  function find(el) {
    while (el && el.getAttribute) {
      if (el.getAttribute('data-p') !== null) return el;
      el = el.parentNode;
    }
    return null;
  }
  document.addEventListener('mouseover', function (e) {
    var t = find(e.target);
    if (!t) { tip.style.display = 'none'; return; }
    while (tip.firstChild) tip.removeChild(tip.firstChild);
    var b = document.createElement('b');
    b.appendChild(document.createTextNode(t.getAttribute('data-p')));
    tip.appendChild(b);
    var keys = ['data-s', 'data-l', 'data-x'];
    for (var i = 0; i < keys.length; i++) {
      var v = t.getAttribute(keys[i]);
      if (v) { var d = document.createElement('div'); d.appendChild(document.createTextNode(v)); tip.appendChild(d); }
    }
    tip.style.display = 'block';
    place(e);
  });
  document.addEventListener('mousemove', function (e) { if (tip.style.display === 'block') place(e); });
  document.addEventListener('mouseout', function (e) { if (!e.relatedTarget) tip.style.display = 'none'; });
})();
`;

/** The whole page. `sizes` is what analyze builds with `sizes: true`. */
export function renderHtmlReport(r: AnalyzeResult, sizes: SizeNode, ci?: CiResult): string {
  const t = r.totals;
  const name = r.image.names[0] ?? r.image.configDigest;
  const card = (value: string, what: string, bad = false): string => `<div class="card${bad ? ' bad' : ''}"><b>${esc(value)}</b><span>${esc(what)}</span></div>`;
  const best = r.squash.best;
  const legend = r.layers.map((l) => `<span><i style="background:${layerColor(l.index)}"></i>L${l.index}</span>`).join('');
  const rows = r.reclaimable.paths
    .map((p) => {
      const copies = p.copies.map((c) => `L${c.layer}→L${c.hiddenBy} ${c.cause}${c.rewrite ? ` (${c.rewrite === 'attributes' ? 'same content' : c.rewrite})` : ''}`).join(', ');
      return `<tr><td class="n">${esc(humanSize(p.bytes))}</td><td class="p">${esc(p.path)}</td><td>${esc(copies)}</td><td>${p.final ? `L${p.final.layer}` : 'gone'}</td></tr>`;
    })
    .join('\n');
  const squashRows = r.squash.options
    .map((o) => `<tr${best?.fromLayer === o.fromLayer ? ' class="best"' : ''}><td class="n">${o.fromLayer}</td><td class="n">${o.layers}</td><td class="n">${esc(humanSize(o.beforeBytes))}</td><td class="n">${esc(humanSize(o.afterBytes))}</td><td class="n">${esc(o.savedBytes >= 0 ? humanSize(o.savedBytes) : `grows ${humanSize(-o.savedBytes)}`)}</td></tr>`)
    .join('\n');
  const layerRows = r.layers
    .map((l) => `<tr><td class="n">${l.index}</td><td class="n">${esc(humanSize(l.compressedBytes))}</td><td class="n">${esc(humanSize(l.uncompressedBytes))}</td><td class="n">${l.files.added}/${l.files.changed}/${l.files.removed}</td><td class="n">${esc(humanSize(l.reclaimableBytes))}</td><td class="p">${esc((l.createdBy ?? '').replace(/\s+/g, ' ').slice(0, 400))}</td></tr>`)
    .join('\n');
  const dupRows = r.duplicates.groups.map((g) => `<tr><td class="n">${esc(humanSize(g.reclaimableBytes))}</td><td class="n">${g.copies} × ${esc(humanSize(g.bytesEach))}</td><td class="p">${esc(g.paths.join('  '))}</td></tr>`).join('\n');
  const ciBlock = ci
    ? `<h2>CI rules</h2><table><tr><th>rule</th><th>threshold</th><th>result</th></tr>${ci.rules.map((x) => `<tr><td>${x.rule}</td><td>${esc(`${x.value} (${x.from})`)}</td><td class="${x.status === 'pass' ? 'pass' : x.status === 'fail' ? 'fail' : 'skip'}">${esc(x.status === 'fail' ? `FAIL: ${x.message}` : x.status === 'pass' ? 'PASS' : 'disabled')}</td></tr>`).join('')}</table>`
    : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="ferry analyze">
<title>${esc(`ferry analyze: ${name}`)}</title>
<style>${STYLE}</style>
</head>
<body>
<svg width="0" height="0" style="position:absolute" aria-hidden="true">${HATCH}</svg>
<main>
<h1>${esc(name)}</h1>
<p class="sub">${esc(`${r.image.configDigest} · ${formatPlatform(r.image.platform)} · ${t.layers} layers · ${humanSize(t.compressedBytes)} stored, ${humanSize(t.uncompressedBytes)} uncompressed${r.image.created ? ` · created ${r.image.created}` : ''}`)}</p>
<section class="cards" id="summary">
${card(pct(t.efficiency), 'efficiency: final / stored file bytes', ci?.rules.some((x) => x.rule === 'lowestEfficiency' && x.status === 'fail') ?? false)}
${card(humanSize(t.reclaimableBytes), `reclaimable in ${t.reclaimableFiles} hidden copies`, t.reclaimableBytes > 0)}
${card(humanSize(t.duplicateBytes), 'identical files at several paths (apart)')}
${card(humanSize(t.finalBytes), `in the final image (${t.finalFiles} files)`)}
${card(best ? humanSize(best.savedBytes) : '0 B', best ? `saved by squash --from-layer ${best.fromLayer}` : 'no squash saves bytes')}
${ci ? card(ci.pass ? 'PASS' : 'FAIL', 'CI rules', !ci.pass) : ''}
</section>
<h2>Layers: file bytes stored, and how much of it is reclaimable</h2>
<div class="legend"><span><i style="background-image:repeating-linear-gradient(45deg,${RECLAIM} 0 2px,#fff 2px 4px)"></i>reclaimable (no final path shows it)</span>${legend}</div>
${layerBars(r)}
<h2>The final file system, sized by bytes, coloured by the layer that wrote each file</h2>
<div class="legend">${legend}<span><i style="background-image:repeating-linear-gradient(45deg,${RECLAIM} 0 2px,#fff 2px 4px)"></i>hatched, red edge: a reclaimable copy, drawn where it was</span></div>
<svg id="treemap" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${MAP_W} ${MAP_H}" width="100%" role="img" aria-label="treemap of the final file system">
${treemap(sizes)}
</svg>
<h2>Top paths by reclaimable bytes</h2>
${rows ? `<table><tr><th class="n">bytes</th><th>path</th><th>copies (stored → hidden by)</th><th>kept</th></tr>\n${rows}</table>` : '<p>Nothing reclaimable.</p>'}
${dupRows ? `<h2>Identical files at several final paths</h2><table><tr><th class="n">saving</th><th class="n">copies</th><th>paths</th></tr>\n${dupRows}</table>` : ''}
<h2>Squash (uncompressed bytes, predicted)</h2>
<table><tr><th class="n">--from-layer</th><th class="n">merges</th><th class="n">before</th><th class="n">after</th><th class="n">saves</th></tr>
${squashRows}</table>
<h2>Layers</h2>
<table><tr><th class="n">#</th><th class="n">stored</th><th class="n">uncompressed</th><th class="n">added/changed/removed</th><th class="n">reclaimable</th><th>created by</th></tr>
${layerRows}</table>
${ciBlock}
</main>
<div id="tip" role="tooltip" style="display:none"></div>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
