import {mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {browserMissing, renderHtml} from './browser.js';

// The browser harness on pages whose rendering is known by construction: a red SVG rect and a blue
// canvas at fixed places, a console.error, an uncaught error, tooltips, and a page that tries the
// network (which must be recorded and blocked).

const WIDTH = 320;
const HEIGHT = 200;

const DRAWING = `<!doctype html>
<html><head><meta charset="utf-8"><style>
  body { margin: 0; background: #fff; }
  svg, canvas { position: absolute; top: 0; }
  svg { left: 0; } canvas { left: 160px; }
  #tip { position: absolute; top: 150px; left: 0; padding: 4px 8px; background: rgb(255,255,0); display: none; }
</style></head><body>
<svg id="chart" width="160" height="100" xmlns="http://www.w3.org/2000/svg">
  <rect id="layer1" x="10" y="10" width="100" height="60" fill="rgb(255,0,0)"><title>/data/big.bin · 37 MB · layer 1</title></rect>
  <circle cx="130" cy="80" r="10" fill="rgb(0,128,0)"/>
</svg>
<canvas id="paint" width="160" height="100"></canvas>
<div id="hot" data-tip="/blob/part-0.bin 17 MB layer 1" style="position:absolute; top:110px; left:0; width:80px; height:30px; background:#eee">hot</div>
<div id="tip"></div>
<script>
  const g = document.getElementById('paint').getContext('2d');
  g.fillStyle = 'rgb(0,0,255)';
  g.fillRect(0, 0, 160, 100);
  const tip = document.getElementById('tip');
  const hot = document.getElementById('hot');
  hot.addEventListener('mouseenter', () => { tip.textContent = hot.dataset.tip; tip.style.display = 'block'; });
  hot.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
  console.error('boom: drawn');
  setTimeout(() => { throw new Error('kaboom after load'); }, 0);
</script>
</body></html>
`;

const NETWORK = `<!doctype html>
<html><head><meta charset="utf-8"></head><body>
<img src="http://example.invalid/pixel.png" alt="">
<script>
  window.fetchOutcome = fetch('http://example.invalid/api?x=1').then(() => 'resolved', (e) => 'rejected: ' + e.name);
</script>
</body></html>
`;

describe.skipIf(browserMissing())('headless Chromium harness', () => {
  let dir: string;
  const shots: string[] = [];
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-browser-'));
    writeFileSync(path.join(dir, 'drawing.html'), DRAWING);
    writeFileSync(path.join(dir, 'network.html'), NETWORK);
  });
  afterAll(() => {
    if (dir) rmSync(dir, {recursive: true, force: true});
    for (const s of shots) rmSync(path.dirname(s), {recursive: true, force: true});
  });

  it('renders SVG and canvas into a real PNG and captures console and page errors', async () => {
    const r = await renderHtml(path.join(dir, 'drawing.html'), {width: WIDTH, height: HEIGHT});
    shots.push(r.screenshot);
    try {
      const png = readFileSync(r.screenshot);
      expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      // IHDR: width and height are the viewport in CSS pixels.
      expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([WIDTH, HEIGHT]);
      expect(statSync(r.screenshot).size).toBeGreaterThan(500);
      // What was drawn is in the picture, where it was drawn.
      expect(await r.pixel(r.screenshot, 60, 40)).toEqual([255, 0, 0, 255]);
      expect(await r.pixel(r.screenshot, 240, 50)).toEqual([0, 0, 255, 255]);
      expect(await r.pixel(r.screenshot, 300, 190)).toEqual([255, 255, 255, 255]);
      expect(await r.evaluate(() => Array.from(document.querySelectorAll('#chart *')).map((e) => e.localName))).toEqual(['rect', 'title', 'circle']);
      expect(await r.evaluate((sel: string) => document.querySelector(sel)?.getBoundingClientRect().width, '#layer1')).toBe(100);
      expect(r.consoleErrors).toEqual(['boom: drawn']);
      // The timer's throw may land after load: give it the next task.
      await r.evaluate(() => new Promise((res) => setTimeout(res, 50)));
      expect(r.pageErrors).toEqual(['kaboom after load']);
      expect(r.requests).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it('hover returns a native SVG <title> tooltip and a page-drawn tooltip', async () => {
    const r = await renderHtml(path.join(dir, 'drawing.html'), {width: WIDTH, height: HEIGHT});
    shots.push(r.screenshot);
    try {
      expect(await r.hover('#layer1')).toBe('/data/big.bin · 37 MB · layer 1');
      expect(await r.evaluate(() => getComputedStyle(document.getElementById('tip')!).display)).toBe('none');
      expect(await r.hover('#hot', {tooltip: '#tip'})).toBe('/blob/part-0.bin 17 MB layer 1');
      // The page tooltip is on screen: its yellow padding is in the new screenshot.
      const after = await r.shoot('hovered');
      expect(await r.pixel(after, 2, 152)).toEqual([255, 255, 0, 255]);
    } finally {
      await r.close();
    }
  });

  it('records and blocks every request that would leave the machine', async () => {
    const r = await renderHtml(path.join(dir, 'network.html'), {width: WIDTH, height: HEIGHT});
    shots.push(r.screenshot);
    try {
      expect(await r.evaluate(() => (window as unknown as {fetchOutcome: Promise<string>}).fetchOutcome)).toBe('rejected: TypeError');
      expect([...r.requests].sort()).toEqual(['http://example.invalid/api?x=1', 'http://example.invalid/pixel.png']);
      // Aborted by the harness before any lookup: Chromium reports the block, not a DNS failure.
      expect(r.consoleErrors.join('\n')).toContain('ERR_BLOCKED_BY_CLIENT');
      expect(r.consoleErrors.join('\n')).not.toContain('ERR_NAME_NOT_RESOLVED');
    } finally {
      await r.close();
    }
  });
});
