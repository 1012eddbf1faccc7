// Builds the CLI as one file, dist/bundle/ferry.cjs (oclif, every command and the library they use),
// and the blob worker beside it, dist/bundle/worker.js, then its V8 code cache (scripts/code-cache.js):
// the CLI starts from one precompiled file instead of resolving hundreds of modules (docs/benchmarks.md,
// start-up). The library (`import 'ferry'`) stays unbundled in dist/src. Runs after tsc, from `npm run build`.
import {spawnSync} from 'node:child_process';
import {readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {build} from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const dist = path.join(root, 'dist');
/** Modules under commands/ that are not commands (shared flags, the base class, helpers). */
const HELPERS = new Set(['base.js', 'progress.js', 'environment.js', 'cleanup.js', 'registry-flags.js', 'daemon-flags.js', 'terminal.js']);

function commandFiles(dir, prefix = '') {
  const out = [];
  for (const entry of readdirSync(path.join(dist, 'commands', dir), {withFileTypes: true})) {
    const rel = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (entry.name !== 'hooks') out.push(...commandFiles(rel, `${prefix}${entry.name}:`));
    } else if (entry.name.endsWith('.js') && !(dir === '' && HELPERS.has(entry.name))) out.push({id: `${prefix}${entry.name.slice(0, -3)}`, file: `./commands/${rel}`});
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : 1));
}

const commands = commandFiles('');
const entry = path.join(dist, 'bundle-entry.js');
writeFileSync(
  entry,
  [
    // Each command's module (and what only it uses) is evaluated when oclif asks for that command:
    // esbuild wraps a require()d module in a function run on first use.
    `export const COMMANDS = {${commands.map((c) => `get '${c.id}'() { return require('${c.file}').default; }`).join(', ')}};`,
    `export {flush, run} from '@oclif/core';`,
    `export {default as COMMAND_NOT_FOUND} from './commands/hooks/not-found.js';`,
    '',
  ].join('\n'),
);
/**
 * Two lines of oclif that cost every start and do nothing useful in the bundle, rewritten as it is
 * built (a line that has changed upstream is left as it is, with a warning):
 * - lib/config/plugin.js sorts the command ids with localeCompare, and the first localeCompare of a
 *   process builds ICU's collator (~12 ms). The ids are lower-case ASCII words and colons, whose
 *   code-unit order is the same order: compared directly.
 * - lib/index.js checks node against oclif's own engines by requiring its package.json through a
 *   computed path, which the bundle does not have: the check always gave up, after loading semver
 *   (2–3 ms). Not called (ferry's package.json states the node it needs).
 */
const OCLIF_REWRITES = [
  {file: /@oclif[\\/]core[\\/]lib[\\/]config[\\/]plugin\.js$/, from: '.sort((a, b) => a.id.localeCompare(b.id))', to: '.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))'},
  {file: /@oclif[\\/]core[\\/]lib[\\/]index\.js$/, from: '\ncheckNodeVersion();\n', to: '\n'},
];
const oclifStartup = {
  name: 'oclif-startup',
  setup(b) {
    b.onLoad({filter: /@oclif[\\/]core[\\/]lib[\\/](config[\\/]plugin|index)\.js$/}, (args) => {
      const rewrite = OCLIF_REWRITES.find((r) => r.file.test(args.path));
      const text = readFileSync(args.path, 'utf8');
      if (!rewrite || !text.includes(rewrite.from)) {
        process.stderr.write(`scripts/bundle.js: ${args.path} has changed; bundled as it is\n`);
        return undefined;
      }
      return {contents: text.replace(rewrite.from, rewrite.to), loader: 'js'};
    });
  },
};

rmSync(path.join(dist, 'bundle'), {recursive: true, force: true});
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  // The native zstd binding is loaded where it is installed, the first time zstd is met; oclif reads
  // tsconfig.json with typescript only under NODE_ENV=development|test (never in a user's run).
  external: ['zstd-napi', 'zstd-napi/*', 'typescript', 'ts-node', 'tsx'],
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
  legalComments: 'none',
  logLevel: 'warning',
};
// The CLI is CommonJS (oclif and its dependencies are; a script can be compiled with a V8 code cache,
// bin/load-cli.js); import.meta.url names the bundle itself, as it would in an ES module.
const result = await build({
  ...common,
  entryPoints: {ferry: entry},
  outdir: path.join(dist, 'bundle'),
  outExtension: {'.js': '.cjs'},
  format: 'cjs',
  plugins: [oclifStartup],
  define: {'import.meta.url': '__ferryModuleUrl'},
  banner: {js: "var __ferryModuleUrl = require('node:url').pathToFileURL(__filename).href;"},
  metafile: process.env.FERRY_BUNDLE_META === '1',
});
// The blob worker stays an ES module (a worker's file is loaded by its extension and package type).
await build({
  ...common,
  entryPoints: {worker: path.join(dist, 'src/io/blobs/worker.js')},
  outdir: path.join(dist, 'bundle'),
  format: 'esm',
  banner: {js: "import {createRequire as __ferryRequire} from 'node:module'; const require = __ferryRequire(import.meta.url);"},
});
rmSync(entry);
if (result.metafile) writeFileSync(path.join(dist, 'bundle-meta.json'), JSON.stringify(result.metafile));
const cache = spawnSync(process.execPath, [path.join(root, 'scripts/code-cache.js')], {stdio: ['ignore', 'ignore', 'inherit']});
if (cache.status !== 0) throw new Error('scripts/code-cache.js failed');
