/**
 * docs/library.md's example, run as a library user runs it: the package as `npm pack` makes it,
 * installed into a new project, imported by its `exports` ("ferry"). Expected values come from the
 * fixture's own bytes (tar, sha256), not from ferry.
 */
import {execFileSync, spawnSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry, FIXTURES, requireBuiltCli, ROOT} from '../helpers/cli.js';
import {peerMissing} from '../helpers/peers.js';
import {makeTmp, removeTmp} from '../ops/convert-fixtures.js';

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The first fenced block of `language` in docs/library.md. */
function codeBlock(language: string): string {
  const doc = readFileSync(path.join(ROOT, 'docs', 'library.md'), 'utf8');
  const match = new RegExp('```' + language + '\\n([\\s\\S]*?)```').exec(doc);
  if (!match) throw new Error(`docs/library.md has no \`\`\`${language} block`);
  return match[1]!;
}

describe.skipIf(peerMissing('tar', 'npm'))('the library example in docs/library.md, from the packed package', () => {
  let dir: string;
  let project: string;
  beforeAll(() => {
    requireBuiltCli();
    dir = makeTmp('ferry-library-');
    project = path.join(dir, 'project');
    mkdirSync(project);
    // --ignore-scripts: the build is already in dist/ (npm test built it), so packing needs no rebuild.
    const tarball = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], {cwd: ROOT, encoding: 'utf8'}).trim().split('\n').pop()!;
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({name: 'library-example', version: '1.0.0', type: 'module', private: true}));
    execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', path.join(dir, tarball)], {cwd: project, stdio: ['ignore', 'ignore', 'pipe']});
  }, 300_000);
  afterAll(() => removeTmp(dir));

  it('the package holds the library and the CLI, and nothing of the sources or tests', () => {
    const installed = path.join(project, 'node_modules', 'ferry');
    expect(existsSync(path.join(installed, 'dist', 'src', 'index.js'))).toBe(true);
    expect(existsSync(path.join(installed, 'dist', 'src', 'index.d.ts'))).toBe(true);
    expect(readdirSync(installed).sort()).toEqual(['README.md', 'bin', 'dist', 'oclif.manifest.json', 'package.json']);
  });

  it('runs, and what it prints is what the fixture holds', () => {
    const fixture = path.join(FIXTURES, 'edge.docker-save.tar');
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', fixture, 'manifest.json'], {encoding: 'utf8'})) as Array<{Config: string; Layers: string[]}>;
    const config = execFileSync('tar', ['-xOf', fixture, manifest[0]!.Config]);
    const diffIds = (JSON.parse(config.toString()) as {rootfs: {diff_ids: string[]}}).rootfs.diff_ids;
    const passwd = execFileSync('sh', ['-c', 'mkdir -p "$2" && tar -xf "$1" -C "$2" && cat "$2/etc/passwd"', 'sh', path.join(FIXTURES, 'edge.docker-export.tar'), path.join(dir, 'export')]);
    const out = path.join(dir, 'out');
    mkdirSync(out);
    writeFileSync(path.join(project, 'example.mjs'), codeBlock('js'));
    const r = spawnSync(process.execPath, ['example.mjs', fixture, out], {cwd: project, encoding: 'utf8', timeout: 120_000});
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`image ${sha256(config)} ferry-fixture/edge:1 linux/amd64`);
    expect(lines.filter((l) => l.startsWith('layer ')).map((l) => l.split(' ')[3])).toEqual(diffIds);
    expect(lines).toContain('verify ok');
    expect(lines).toContain(`cat /etc/passwd ${passwd.length} bytes`);
    expect(lines.find((l) => l.startsWith('squash '))).toMatch(new RegExp(`^squash ${diffIds.length} layers into sha256:[a-f0-9]{64}$`));
    expect(lines.at(-1)).toBe('refused EXISTS');
    // What it wrote is sound (ferry's own CLI checks digests; tar lists the rootfs).
    for (const written of [`oci-archive:${path.join(out, 'squashed.tar')}`, `oci:${path.join(out, 'layout')}`]) expect(ferry(['verify', written]).status, written).toBe(0);
    expect(execFileSync('tar', ['-tf', path.join(out, 'rootfs.tar')], {encoding: 'utf8'})).toContain('etc/passwd');
  });

  it('the TypeScript example type-checks against the package types (tsc --strict)', () => {
    writeFileSync(path.join(project, 'example.ts'), codeBlock('ts'));
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({compilerOptions: {strict: true, noEmit: true, target: 'ES2022', lib: ['ES2023', 'esnext.disposable'], module: 'NodeNext', moduleResolution: 'NodeNext', types: ['node'], typeRoots: [path.join(ROOT, 'node_modules', '@types')], skipLibCheck: false}, files: ['example.ts']}),
    );
    const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {cwd: project, encoding: 'utf8'});
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
