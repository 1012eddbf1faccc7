// Builds the CLI as one file, dist/bundle/ferry.js (oclif, every command and the library they use),
// and the blob worker beside it, dist/bundle/worker.js: the CLI starts by parsing one file instead of
// resolving hundreds of modules (docs/benchmarks.md, start-up). The library (`import 'ferry'`) stays
// unbundled in dist/src. Runs after tsc, from `npm run build`.
import {readdirSync, rmSync, writeFileSync} from 'node:fs';
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
    ...commands.map((c, i) => `import C${i} from '${c.file}';`),
    `export const COMMANDS = {${commands.map((c, i) => `'${c.id}': C${i}`).join(', ')}};`,
    `export {flush, run} from '@oclif/core';`,
    '',
  ].join('\n'),
);
rmSync(path.join(dist, 'bundle'), {recursive: true, force: true});
const result = await build({
  entryPoints: {ferry: entry, worker: path.join(dist, 'src/io/blobs/worker.js')},
  outdir: path.join(dist, 'bundle'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // The native zstd binding is loaded where it is installed, the first time zstd is met; oclif reads
  // tsconfig.json with typescript only under NODE_ENV=development|test (never in a user's run).
  external: ['zstd-napi', 'zstd-napi/*', 'typescript', 'ts-node', 'tsx'],
  // oclif and its dependencies are CommonJS: their require() calls need one inside an ES module.
  banner: {js: "import {createRequire as __ferryRequire} from 'node:module'; const require = __ferryRequire(import.meta.url);"},
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: process.env.FERRY_BUNDLE_META === '1',
});
rmSync(entry);
if (result.metafile) writeFileSync(path.join(dist, 'bundle-meta.json'), JSON.stringify(result.metafile));
