// Loads the bundled CLI (dist/bundle/ferry.cjs, scripts/bundle.js) the way require() would, but
// compiled with the V8 code cache that scripts/code-cache.js writes beside it at build time: parsing
// and compiling the bundle was the largest single cost of starting a command (docs/benchmarks.md,
// start-up). A cache that does not match this node (another V8 version or flags) is rejected by V8
// and the bundle is compiled from source, as before; ferry never writes the cache at run time.
import {readFileSync, realpathSync} from 'node:fs';
import {createRequire, Module} from 'node:module';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import vm from 'node:vm';

export const BUNDLE = realpathSync(fileURLToPath(new URL('../dist/bundle/ferry.cjs', import.meta.url)));
export const CODE_CACHE = `${BUNDLE}.v8-cache`;

/** Evaluates the bundle once and registers it in require's cache, so oclif's require() of it (its commands and hooks target) gets the same module. */
export function loadCli() {
  const source = readFileSync(BUNDLE, 'utf8');
  let cachedData;
  try {
    cachedData = readFileSync(CODE_CACHE);
  } catch {
    // no cache (a build without it): compile from source
  }
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {filename: BUNDLE, cachedData});
  const module = new Module(BUNDLE);
  module.filename = BUNDLE;
  const require = createRequire(BUNDLE);
  require.cache[BUNDLE] = module;
  script.runInThisContext().call(module.exports, module.exports, require, module, BUNDLE, path.dirname(BUNDLE));
  module.loaded = true;
  return {cli: module.exports, script};
}
