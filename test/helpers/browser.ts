import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs';
import {createRequire} from 'node:module';
import os from 'node:os';
import path from 'node:path';
import {pathToFileURL} from 'node:url';
import type {BrowserContext, Page} from 'playwright-core';
import {IN_CI} from './peers.js';

/**
 * Renders a local, self-contained HTML file (such as a report ferry writes) in Debian's headless
 * Chromium, driven by playwright-core (the npm driver only: it downloads no browser). The page gets
 * no network: every request that is not file:, data:, blob: or about: is recorded and aborted before
 * it leaves the browser, so "the report is self-contained" is something a test can assert.
 */

export const CHROMIUM = '/usr/bin/chromium';

// The background-networking/component/sync flags stop Chromium's own calls home (which the sandbox
// refuses and which would otherwise show up as noise); --no-sandbox because tests run as root.
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Schemes a self-contained page may load without touching the network. */
const LOCAL_SCHEMES = new Set(['file:', 'data:', 'blob:', 'about:']);

/**
 * Why browser tests cannot run, or undefined when they can. Outside CI a missing piece skips (with a
 * "skipped: …" line, like peerMissing); under CI=true it throws, so a CI without the browser fails.
 */
export function browserMissing(): boolean {
  const missing: string[] = [];
  if (!existsSync(CHROMIUM)) missing.push('chromium (Debian package)');
  try {
    createRequire(import.meta.url).resolve('playwright-core');
  } catch {
    missing.push('playwright-core (npm devDependency)');
  }
  if (missing.length === 0) return false;
  if (IN_CI) throw new Error(`CI=true but required peer(s) not installed: ${missing.join(', ')}`);
  console.warn(`skipped: ${missing.join(', ')} not installed`);
  return true;
}

export interface RenderOptions {
  width: number;
  height: number;
  /** A selector to wait for before the screenshot (for pages that draw after load). */
  waitFor?: string;
  /** Screenshot the whole scrollable page rather than the viewport. */
  fullPage?: boolean;
}

export interface RenderedPage {
  /** console.error texts, in order (Chromium's own "Failed to load resource" lines included). */
  consoleErrors: string[];
  /** Uncaught exceptions and unhandled rejections. */
  pageErrors: string[];
  /** URLs of every non-local request the page attempted (all were aborted). */
  requests: string[];
  /** PNG of the rendered page; kept after close() (in a temp dir) so a person can look at it. */
  screenshot: string;
  /** The playwright page, for anything the helpers below do not cover. */
  page: Page;
  evaluate<T>(fn: () => T | Promise<T>): Promise<T>;
  evaluate<T, A>(fn: (arg: A) => T | Promise<T>, arg: A): Promise<T>;
  /**
   * Moves the real mouse over `selector` and returns the tooltip text: the text of `tooltip` once it is
   * visible when given (a page's own tooltip element), else the native tooltip, i.e. the nearest
   * `title` attribute or SVG <title> child of the hovered element or its ancestors.
   */
  hover(selector: string, opts?: {tooltip?: string}): Promise<string>;
  /** Takes another screenshot (e.g. after hover) and returns its path. */
  shoot(name: string): Promise<string>;
  /** RGBA of one pixel of a screenshot PNG, decoded by the browser itself. */
  pixel(png: string, x: number, y: number): Promise<[number, number, number, number]>;
  close(): Promise<void>;
}

/** Two animation frames: whatever the page queued for the next paint has been painted. */
async function settle(page: Page): Promise<void> {
  await page.evaluate(
    () =>
      new Promise<void>((resolve) => {
        requestAnimationFrame(() => requestAnimationFrame(() => resolve()));
      }),
  );
}

export async function renderHtml(file: string, opts: RenderOptions): Promise<RenderedPage> {
  // Imported lazily so that a missing playwright-core fails only the tests that render.
  const {chromium} = await import('playwright-core');
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'ferry-chromium-'));
  const shotDir = mkdtempSync(path.join(os.tmpdir(), 'ferry-shot-'));
  let context: BrowserContext | undefined;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: {width: opts.width, height: opts.height},
      // Screenshots in CSS pixels, so pixel() coordinates match the layout.
      deviceScaleFactor: 1,
    });
    const consoleErrors: string[] = [];
    const pageErrors: string[] = [];
    const requests: string[] = [];
    await context.route('**/*', async (route) => {
      const url = route.request().url();
      if (LOCAL_SCHEMES.has(new URL(url).protocol)) return route.continue();
      requests.push(url);
      return route.abort('blockedbyclient');
    });
    // WebSockets bypass route(): catch them apart and refuse them the same way.
    await context.routeWebSocket(/.*/, (ws) => {
      requests.push(ws.url());
      return ws.close({code: 1008, reason: 'no network in tests'});
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(pathToFileURL(path.resolve(file)).href, {waitUntil: 'load'});
    if (opts.waitFor !== undefined) await page.waitForSelector(opts.waitFor, {state: 'visible'});
    await page.evaluate(() => document.fonts.ready.then(() => undefined));
    await settle(page);

    let shots = 0;
    const shoot = async (name: string): Promise<string> => {
      const out = path.join(shotDir, `${String(shots++).padStart(2, '0')}-${name.replace(/[^\w.-]+/g, '_')}.png`);
      await page.screenshot({path: out, fullPage: opts.fullPage ?? false});
      return out;
    };
    const screenshot = await shoot('render');
    const ctx = context;
    return {
      consoleErrors,
      pageErrors,
      requests,
      screenshot,
      page,
      // Playwright's own overloads are stricter (Unboxed<A>); the interface above states what callers get.
      evaluate: ((fn: (arg: unknown) => unknown, arg?: unknown) => page.evaluate(fn, arg)) as RenderedPage['evaluate'],
      hover: async (selector, hopts = {}) => {
        await page.hover(selector);
        if (hopts.tooltip !== undefined) {
          const tip = page.locator(hopts.tooltip);
          await tip.waitFor({state: 'visible'});
          await settle(page);
          return (await tip.innerText()).trim();
        }
        await settle(page);
        return page.$eval(selector, (el: Element) => {
          for (let n: Element | null = el; n !== null; n = n.parentElement) {
            const title = n.getAttribute('title');
            if (title !== null) return title;
            const svgTitle = Array.from(n.children).find((c) => c.localName === 'title');
            if (svgTitle !== undefined) return (svgTitle.textContent ?? '').trim();
          }
          return '';
        });
      },
      shoot,
      pixel: async (png, x, y) => {
        const b64 = readFileSync(png).toString('base64');
        return page.evaluate(
          async ({b64, x, y}) => {
            // A data: URL keeps the canvas untainted, so getImageData is allowed.
            const img = new Image();
            img.src = `data:image/png;base64,${b64}`;
            await img.decode();
            const c = document.createElement('canvas');
            c.width = img.naturalWidth;
            c.height = img.naturalHeight;
            const g = c.getContext('2d');
            if (g === null) throw new Error('no 2d context');
            g.drawImage(img, 0, 0);
            const d = g.getImageData(x, y, 1, 1).data;
            return [d[0] ?? 0, d[1] ?? 0, d[2] ?? 0, d[3] ?? 0] as [number, number, number, number];
          },
          {b64, x, y},
        );
      },
      close: async () => {
        await ctx.close();
        rmSync(userDataDir, {recursive: true, force: true});
      },
    };
  } catch (e) {
    await context?.close().catch(() => undefined);
    rmSync(userDataDir, {recursive: true, force: true});
    throw e;
  }
}
