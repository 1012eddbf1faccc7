import {copyFileSync, mkdirSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {browserMissing, renderHtml, type RenderedPage} from '../helpers/browser.js';
import {ferry, requireBuiltCli} from '../helpers/cli.js';
import {craftDockerArchive, type CraftLayer} from '../helpers/tree-model.js';
import {makeTmp, removeTmp} from '../ops/convert-fixtures.js';

/**
 * The picture `ferry analyze --html` writes, rendered by Debian's headless Chromium with no network:
 * it must draw (layer bars, a treemap with final files and reclaimable copies), log no error, ask
 * for nothing outside the file, and show path, size and layer on hover. The screenshot is kept in
 * $TMPDIR/ferry-test-artifacts/ for CI to collect.
 */
const LAYERS: CraftLayer[] = [
  [{path: 'usr/'}, {path: 'usr/bin/'}, ...Array.from({length: 12}, (_, i) => ({path: `usr/bin/tool${i}`, content: {zeros: 40_000 + i * 7_000}, mode: 0o755}))],
  [
    {path: 'data/'},
    {path: 'data/big.bin', content: {zeros: 2_000_000}},
    {path: 'cache/'},
    {path: 'cache/a.bin', content: {zeros: 900_000}},
    {path: 'cache/b.bin', content: {zeros: 300_000}},
    {path: 'usr/'},
    {path: 'usr/share/'},
    {path: 'usr/share/doc/'},
    ...Array.from({length: 30}, (_, i) => ({path: `usr/share/doc/page${i}.txt`, content: `doc ${i} `.repeat(200 + i * 30)})),
  ],
  [{path: 'data/'}, {path: 'data/big.bin', content: {zeros: 2_000_000}, mode: 0o600}, {path: '.wh.cache'}, {path: 'app/'}, {path: 'app/server', content: {zeros: 700_000}, mode: 0o755}],
  [{path: 'app/'}, {path: 'app/config.json', content: '{"port": 8080}\n'}, {path: 'usr/'}, {path: 'usr/bin/'}, {path: 'usr/bin/.wh.tool3'}],
];

/** Layer colours of the picture (Tableau 10 without red): L2 is the third. */
const L2_RGB = [0x59, 0xa1, 0x4f];

describe.skipIf(browserMissing())('ferry analyze --html in headless Chromium', () => {
  let dir: string;
  let page: RenderedPage;
  beforeAll(async () => {
    requireBuiltCli();
    dir = makeTmp('ferry-analyze-html-');
    const image = path.join(dir, 'app.tar');
    craftDockerArchive(image, 'analyze/html:1', LAYERS);
    const report = path.join(dir, 'report.html');
    const r = ferry(['analyze', image, '--html', report, '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    page = await renderHtml(report, {width: 1280, height: 900, fullPage: true, waitFor: '#treemap'});
  });
  afterAll(async () => {
    await page?.close();
    removeTmp(dir);
  });

  it('renders without errors and without asking the network for anything', () => {
    expect(page.consoleErrors).toEqual([]);
    expect(page.pageErrors).toEqual([]);
    expect(page.requests).toEqual([]);
  });

  it('draws a bar per layer and a treemap of final files and reclaimable copies', async () => {
    const drawn = await page.evaluate(() => {
      const box = (sel: string): {w: number; h: number} => {
        const r = document.querySelector(sel)!.getBoundingClientRect();
        return {w: Math.round(r.width), h: Math.round(r.height)};
      };
      return {
        bars: document.querySelectorAll('#layer-bars .bar').length,
        reclaimBars: document.querySelectorAll('#layer-bars .reclaim').length,
        files: document.querySelectorAll('#treemap .tile.file').length,
        hidden: [...document.querySelectorAll('#treemap .tile.hidden')].map((e) => e.getAttribute('data-p')).sort(),
        treemap: box('#treemap'),
        bars_: box('#layer-bars'),
      };
    });
    expect(drawn.bars).toBe(LAYERS.length);
    expect(drawn.reclaimBars).toBe(2); // layer 0 (tool3, deleted in layer 3) and layer 1 (big.bin's first copy, cache/)
    expect(drawn.files).toBeGreaterThan(10);
    expect(drawn.hidden).toEqual(['/cache/a.bin', '/cache/b.bin', '/data/big.bin', '/usr/bin/tool3']);
    expect(drawn.treemap.w).toBeGreaterThan(1000);
    expect(drawn.treemap.h).toBeGreaterThan(500);
    expect(drawn.bars_.h).toBeGreaterThan(50);
  });

  it('hovering shows path, size and layer', async () => {
    const hidden = await page.hover('#treemap .tile.hidden[data-p="/cache/a.bin"]', {tooltip: '#tip'});
    expect(hidden).toContain('/cache/a.bin');
    expect(hidden).toContain('878.9 KiB reclaimable (900000 bytes)');
    expect(hidden).toContain('stored in layer 1, removed in layer 2');
    const kept = await page.hover('#treemap .tile.file[data-p="/data/big.bin"]', {tooltip: '#tip'});
    expect(kept).toBe('/data/big.bin\n1.9 MiB (2000000 bytes)\nlayer 2');
    const bar = await page.hover('#layer-bars .bar:nth-of-type(2)', {tooltip: '#tip'});
    expect(bar).toMatch(/^layer 1: /);
    await page.shoot('hover');
  });

  it('paints each file in the colour of its layer (checked on the screenshot), and keeps the PNG', async () => {
    await page.page.mouse.move(0, 0);
    const center = await page.evaluate(() => {
      const r = document.querySelector('#treemap .tile.file[data-p="/data/big.bin"] rect')!.getBoundingClientRect();
      return {x: Math.round(r.left + r.width / 2 + window.scrollX), y: Math.round(r.top + r.height / 2 + window.scrollY)};
    });
    const shot = await page.shoot('final');
    const [r, g, b] = await page.pixel(shot, center.x, center.y);
    expect([r, g, b]).toEqual(L2_RGB);
    const artifacts = path.join(os.tmpdir(), 'ferry-test-artifacts');
    mkdirSync(artifacts, {recursive: true});
    copyFileSync(page.screenshot, path.join(artifacts, 'analyze-report.png'));
    console.info(`screenshot: ${path.join(artifacts, 'analyze-report.png')}`);
  });
});
