#!/usr/bin/env node
// Launcher. `--version` answers without loading anything else; every command runs from the bundled
// CLI (dist/bundle/ferry.cjs, scripts/bundle.js), one file compiled with its code cache
// (bin/load-cli.js). Commands report their own errors (commands/base.ts); what fails before a
// command runs (an unknown command) gets the same one-line form here, exit 2.
import {readFileSync} from 'node:fs';

const argv = process.argv.slice(2);
if (argv.length === 1 && argv[0] === '--version') {
  // What oclif prints (its user agent), without oclif.
  const {version} = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`ferry/${version} ${process.platform}-${process.arch} node-${process.version}\n`);
} else {
  const {loadCli} = await import('./load-cli.js');
  const {flush, run} = loadCli().cli;
  try {
    await run(argv, import.meta.url);
    await flush();
  } catch (error) {
    const exit = error?.oclif?.exit;
    if (exit !== 0) {
      const message = String(error?.message ?? error).split('\n')[0].replace(/[\u0000-\u001f\u007f]/g, '?');
      process.stderr.write(`ferry: ${message}\n`);
      process.exitCode = typeof exit === 'number' ? exit : 2;
    }
  }
}
