#!/usr/bin/env node
// Launcher: oclif reads oclif.manifest.json, so only the invoked command is imported. Commands report
// their own errors (commands/base.ts); what fails before a command runs (an unknown command) gets
// the same one-line form here, exit 2.
import {flush, run} from '@oclif/core';

try {
  await run(process.argv.slice(2), import.meta.url);
  await flush();
} catch (error) {
  const exit = error?.oclif?.exit;
  if (exit !== 0) {
    const message = String(error?.message ?? error).split('\n')[0].replace(/[\u0000-\u001f\u007f]/g, '?');
    process.stderr.write(`ferry: ${message}\n`);
    process.exitCode = typeof exit === 'number' ? exit : 2;
  }
}
