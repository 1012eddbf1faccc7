/**
 * The launcher's start-up path (bin/run.js, bin/load-cli.js): the bundled CLI is compiled with the
 * V8 code cache written at build time, and a cache that is missing or does not fit this node only
 * costs time — the bundle is then compiled from source and every command behaves the same.
 */
import {spawnSync} from 'node:child_process';
import {copyFileSync, mkdirSync, symlinkSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry, FIXTURES, requireBuiltCli, ROOT} from '../helpers/cli.js';
import {makeTmp, removeTmp} from '../ops/convert-fixtures.js';

let dir: string;
beforeAll(() => {
  requireBuiltCli();
  dir = makeTmp('ferry-startup-');
});
afterAll(() => removeTmp(dir));

/** A copy of the installed CLI (launcher, bundle, package.json, manifest) without the code cache. */
function installedCopy(name: string): string {
  const root = path.join(dir, name);
  mkdirSync(path.join(root, 'bin'), {recursive: true});
  mkdirSync(path.join(root, 'dist', 'bundle'), {recursive: true});
  for (const f of ['bin/run.js', 'bin/load-cli.js', 'dist/bundle/ferry.cjs', 'dist/bundle/worker.js', 'package.json', 'oclif.manifest.json']) copyFileSync(path.join(ROOT, f), path.join(root, f));
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
  return root;
}

describe('the bundled CLI and its code cache', () => {
  it('V8 accepts the cache the build wrote', () => {
    const probe = `import {loadCli} from ${JSON.stringify(path.join(ROOT, 'bin', 'load-cli.js'))}; process.stdout.write(String(loadCli().script.cachedDataRejected));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], {encoding: 'utf8'});
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('false');
  });

  it('runs the same without a cache, and with a cache that is garbage', () => {
    const args = ['inspect', '--json', path.join(FIXTURES, 'edge.docker-save.tar')];
    const expected = ferry(args);
    expect(expected.status).toBe(0);
    const bare = installedCopy('no-cache');
    const garbage = installedCopy('garbage-cache');
    writeFileSync(path.join(garbage, 'dist', 'bundle', 'ferry.cjs.v8-cache'), Buffer.alloc(4096, 0x5a));
    for (const root of [bare, garbage]) {
      const r = spawnSync(process.execPath, [path.join(root, 'bin', 'run.js'), ...args], {encoding: 'utf8'});
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(expected.stdout);
      const unknown = spawnSync(process.execPath, [path.join(root, 'bin', 'run.js'), 'convrt'], {encoding: 'utf8'});
      expect(unknown.status).toBe(2);
      expect(unknown.stderr).toMatch(/^ferry: "convrt" is not a ferry command; did you mean "convert"\?/);
    }
  });
});
