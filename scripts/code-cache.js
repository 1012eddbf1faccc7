// Writes the V8 code cache of the bundled CLI (bin/load-cli.js reads it): loads the bundle, runs the
// commands a script most often calls on a fixture so the functions they use are compiled too, and
// saves what V8 compiled. Run by scripts/bundle.js (stdout discarded); the cache is only valid for
// the node that wrote it, and any other node compiles the bundle from source.
import {existsSync, writeFileSync} from 'node:fs';
import {CODE_CACHE, loadCli} from '../bin/load-cli.js';

const fixture = new URL('../fixtures/edge.docker-save.tar', import.meta.url).pathname;
const {cli, script} = loadCli();
const runs = [['--help'], ...(existsSync(fixture) ? [['inspect', '--json', fixture], ['ls', fixture], ['verify', fixture]] : [])];
for (const argv of runs) {
  try {
    await cli.run(argv, new URL('../bin/run.js', import.meta.url).href);
  } catch {
    // a warm-up run that fails still compiled what it ran
  }
}
await cli.flush();
writeFileSync(CODE_CACHE, script.createCachedData());
