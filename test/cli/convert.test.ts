/**
 * `ferry convert` as a user runs it (node bin/run.js): usage errors, refusal of an existing
 * destination, atomicity (nothing left on a corrupt source or Ctrl-C), determinism, stdout output,
 * image selection, and the tar headers of what it writes. Build first (`npm run build`).
 */
import {execFileSync, spawn} from 'node:child_process';
import {copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry, requireBuiltCli} from '../helpers/cli.js';
import {peerMissing} from '../helpers/peers.js';
import {ArchiveView, describeArchive, FIXTURES, makeRandomDockerArchive, makeTmp, removeTmp, sha256, tarHeaders} from '../ops/convert-fixtures.js';

const EDGE = path.join(FIXTURES, 'edge.docker-save.tar');
const MULTI = path.join(FIXTURES, 'edge-multi.docker-save.tar');
const PODMAN_OCI = path.join(FIXTURES, 'edge.podman.oci');

function fileDigest(file: string): string {
  return sha256(readFileSync(file));
}

/** sha256 over a directory's relative paths and file contents, in sorted order. */
function treeDigest(dir: string): string {
  const parts: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const full = path.join(dir, r);
      if (statSync(full).isDirectory()) walk(r);
      else parts.push(`${r} ${fileDigest(full)}`);
    }
  };
  walk('');
  return sha256(parts.join('\n'));
}

describe.skipIf(peerMissing('python3', 'jq'))('ferry convert (CLI)', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = makeTmp('ferry-cli-');
  });
  afterAll(() => removeTmp(tmp));

  const fresh = (name: string): string => {
    const dir = path.join(tmp, name);
    mkdirSync(dir);
    return dir;
  };

  describe('usage errors exit 2 with one line on stderr and write nothing', () => {
    const cases: Array<[string, string[], RegExp]> = [
      ['DEST without a form', [EDGE, 'out.tar'], /invalid destination "out\.tar": expected docker-archive:PATH, oci-archive:PATH, oci:DIR/],
      ['an unknown form', [EDGE, 'containers-storage:out'], /invalid destination/],
      ['rootfs: as DEST', [EDGE, 'rootfs:out.tar'], /rootfs: is not a destination form/],
      ['oci: to stdout', [EDGE, 'oci:-'], /cannot be written to stdout/],
      ['--tag with several images', [MULTI, 'oci:OUT', '--tag', 'x:1'], /--tag names one image, but 2 are selected/],
      ['an invalid --tag', [EDGE, 'oci:OUT', '--tag', 'Bad Name'], /invalid --tag "Bad Name"/],
      ['a digest --tag', [EDGE, 'oci:OUT', '--tag', `x@sha256:${'a'.repeat(64)}`], /a digest cannot name an image/],
      ['--docker-layout for an OCI form', [EDGE, 'oci-archive:OUT', '--docker-layout', 'legacy'], /--docker-layout applies to docker-archive/],
      ['a bad --compress', [EDGE, 'oci:OUT', '--compress', 'lz4'], /compress/],
      ['a bad --platform', [EDGE, 'oci:OUT', '--platform', 'linux'], /invalid platform "linux"/],
      ['--json with stdout', [EDGE, 'oci-archive:-', '--json'], /--json prints to stdout/],
    ];
    for (const [what, args, message] of cases) {
      it(what, () => {
        const dir = fresh(`usage-${sha256(what).slice(7, 15)}`);
        const r = ferry(['convert', ...args.map((a) => a.replace('OUT', path.join(dir, 'out')))], {cwd: dir});
        expect(r.status).toBe(2);
        expect(r.stderr).toMatch(message);
        // (Under NODE_ENV=test, which vitest sets, oclif adds an "UnparsedCommand" warning after a
        // flag error; users never see it. Count ferry's own lines.)
        expect(r.stderr.split('\n').filter((l) => l.startsWith('ferry:')), r.stderr).toHaveLength(1);
        expect(r.stdout).toBe('');
        expect(readdirSync(dir)).toEqual([]);
      });
    }
  });

  it('refuses an existing destination (exit 1) unless --force, and --force replaces it', () => {
    const dir = fresh('exists');
    const out = path.join(dir, 'out.tar');
    writeFileSync(out, 'precious');
    const refused = ferry(['convert', EDGE, `docker-archive:${out}`]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/already exists \(pass --force to replace it\)/);
    expect(readFileSync(out, 'utf8')).toBe('precious');
    const forced = ferry(['convert', EDGE, `docker-archive:${out}`, '--force']);
    expect(forced.status, forced.stderr).toBe(0);
    expect(describeArchive(out, 'docker-archive')).toEqual(describeArchive(EDGE, 'docker-archive'));
    expect(readdirSync(dir)).toEqual(['out.tar']);
  });

  it('--force replaces an OCI layout directory but never an unrelated directory', () => {
    const dir = fresh('exists-dir');
    const layout = path.join(dir, 'layout');
    expect(ferry(['convert', EDGE, `oci:${layout}`]).status).toBe(0);
    const again = ferry(['convert', MULTI, `oci:${layout}`, '--force']);
    expect(again.status, again.stderr).toBe(0);
    expect(describeArchive(layout, 'oci')).toEqual(describeArchive(MULTI, 'docker-archive'));
    const unrelated = path.join(dir, 'home');
    mkdirSync(unrelated);
    writeFileSync(path.join(unrelated, 'notes.txt'), 'keep me');
    const r = ferry(['convert', EDGE, `oci:${unrelated}`, '--force']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/not an OCI layout; refusing to replace it/);
    expect(readdirSync(unrelated)).toEqual(['notes.txt']);
    expect(readdirSync(dir).sort()).toEqual(['home', 'layout']);
  });

  it('a missing destination directory is an error naming it', () => {
    const r = ferry(['convert', EDGE, `oci-archive:${path.join(tmp, 'no-such-dir', 'out.tar')}`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no-such-dir does not exist/);
  });

  describe('a corrupt source blob fails the conversion naming the blob and leaves nothing behind', () => {
    let corruptOci: string;
    let corruptDocker: string;
    let badDigest: string;
    beforeAll(() => {
      // A gzip layer blob of an OCI layout with one byte changed (its name still claims the old digest).
      corruptOci = path.join(tmp, 'corrupt.oci');
      cpSync(PODMAN_OCI, corruptOci, {recursive: true});
      const index = JSON.parse(readFileSync(path.join(corruptOci, 'index.json'), 'utf8')) as {manifests: Array<{digest: string}>};
      const manifest = JSON.parse(readFileSync(path.join(corruptOci, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as {layers: Array<{digest: string; size: number}>};
      const layer = manifest.layers[0]!;
      badDigest = layer.digest;
      const blob = path.join(corruptOci, 'blobs', 'sha256', layer.digest.slice(7));
      const bytes = readFileSync(blob);
      bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
      writeFileSync(blob, bytes);
      // An uncompressed docker-save layer.tar with one byte of a file body changed (diffID mismatch).
      corruptDocker = path.join(tmp, 'corrupt.docker.tar');
      copyFileSync(EDGE, corruptDocker);
      const headers = tarHeaders(EDGE);
      const manifestJson = new ArchiveView(EDGE).json<Array<{Layers: string[]}>>('manifest.json');
      const first = manifestJson[0]!.Layers[0]!;
      const member = headers.find((h) => h.name === first)!;
      expect(member.size).toBeGreaterThan(4096);
      // Find the member's data offset with Python's tarfile (an independent reader).
      const offset = Number(execFileSync('python3', ['-c', `import tarfile,sys\nt=tarfile.open(sys.argv[1])\nprint(t.getmember(sys.argv[2]).offset_data)`, EDGE, first]).toString().trim());
      const tarBytes = readFileSync(corruptDocker);
      tarBytes[offset + 2048]! ^= 0x01;
      writeFileSync(corruptDocker, tarBytes);
    });

    for (const [label, dest, extra] of [
      ['docker-archive', 'docker-archive:OUT.tar', []],
      ['docker-archive legacy', 'docker-archive:OUT.tar', ['--docker-layout', 'legacy']],
      ['oci-archive', 'oci-archive:OUT.tar', []],
      ['oci', 'oci:OUT', []],
      ['oci-archive recompressed', 'oci-archive:OUT.tar', ['--compress', 'zstd']],
    ] as Array<[string, string, string[]]>) {
      it(`from an OCI layout to ${label}`, () => {
        const dir = fresh(`corrupt-oci-${label.replace(/\W/g, '-')}`);
        const r = ferry(['convert', corruptOci, dest.replace('OUT', path.join(dir, 'out')), ...extra]);
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(badDigest);
        expect(r.stderr).toMatch(/digest mismatch|corrupt gzip/);
        expect(r.stderr).not.toMatch(/\n\s+at /);
        expect(readdirSync(dir)).toEqual([]);
      });
    }

    it('from a docker-save with a changed layer.tar, to docker-archive and to stdout', () => {
      const dir = fresh('corrupt-docker');
      const r = ferry(['convert', corruptDocker, `oci-archive:${path.join(dir, 'out.tar')}`]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/layer\.tar: blob: digest mismatch/);
      expect(readdirSync(dir)).toEqual([]);
      const piped = ferry(['convert', corruptDocker, 'docker-archive:-']);
      expect(piped.status).toBe(1);
      expect(piped.stdoutBytes.length).toBe(0);
    });
  });

  it('Ctrl-C during a conversion exits 130 and leaves nothing in the destination directory', async () => {
    const big = makeRandomDockerArchive(tmp, 'ferry-test/big:1', [48 << 20, 16 << 20]);
    const dir = fresh('interrupted');
    const child = spawn(process.execPath, [requireBuiltCli(), 'convert', big, `oci-archive:${path.join(dir, 'out.tar')}`, '--compress', 'gzip'], {stdio: ['ignore', 'pipe', 'pipe']});
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Wait until the conversion is under way (its scratch or temp file exists beside the destination).
    const deadline = Date.now() + 30_000;
    while (readdirSync(dir).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(readdirSync(dir).length).toBeGreaterThan(0);
    process.kill(child.pid!, 'SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/interrupted by SIGINT/);
    expect(readdirSync(dir)).toEqual([]);
  });

  describe('output is deterministic: the same input and flags give identical bytes', () => {
    for (const compress of ['keep', 'gzip', 'zstd', 'none']) {
      for (const [form, extra] of [
        ['docker-archive', []],
        ['docker-archive', ['--docker-layout', 'legacy']],
        ['oci-archive', []],
        ['oci', []],
      ] as Array<[string, string[]]>) {
        if (compress === 'zstd' && form === 'docker-archive') continue; // covered by oci forms; docker 20.10 cannot load it anyway
        it(`${form} ${extra.join(' ')} --compress ${compress}`, () => {
          const dir = fresh(`det-${form}-${extra.length}-${compress}`);
          const outs = ['one', 'two'].map((n) => path.join(dir, form === 'oci' ? n : `${n}.tar`));
          for (const out of outs) {
            const r = ferry(['convert', PODMAN_OCI, `${form}:${out}`, '--compress', compress, ...extra]);
            expect(r.status, r.stderr).toBe(0);
          }
          const digest = form === 'oci' ? treeDigest : fileDigest;
          expect(digest(outs[0]!)).toBe(digest(outs[1]!));
        });
      }
    }

    it('stdout carries exactly the bytes a file destination gets', () => {
      const dir = fresh('stdout');
      const file = path.join(dir, 'file.tar');
      expect(ferry(['convert', MULTI, `docker-archive:${file}`]).status).toBe(0);
      const piped = ferry(['convert', MULTI, 'docker-archive:-']);
      expect(piped.status, piped.stderr).toBe(0);
      expect(sha256(piped.stdoutBytes)).toBe(fileDigest(file));
    });
  });

  it('tar headers are fixed: mtime 0, uid/gid 0, no user/group names, fixed modes, names in order', () => {
    const dir = fresh('headers');
    for (const [name, extra] of [['oci.tar', ['oci-archive']], ['docker.tar', ['docker-archive']], ['legacy.tar', ['docker-archive', '--docker-layout', 'legacy']]] as Array<[string, string[]]>) {
      const out = path.join(dir, name);
      const [form, ...flags] = extra;
      expect(ferry(['convert', MULTI, `${form}:${out}`, ...flags]).status).toBe(0);
      const headers = tarHeaders(out);
      expect(headers.length).toBeGreaterThan(5);
      for (const h of headers) {
        expect([h.mtime, h.uid, h.gid, h.uname, h.gname]).toEqual([0, 0, 0, '', '']);
        expect(h.mode).toBe(h.type === '5' ? 0o755 : h.type === '2' ? 0o777 : 0o644);
      }
      const names = headers.map((h) => h.name);
      expect(names).toEqual([...names].sort());
      expect(new Set(names).size).toBe(names.length);
    }
  });

  it('shared layers are stored once in multi-image outputs', () => {
    const dir = fresh('shared');
    const images = describeArchive(MULTI, 'docker-archive');
    const distinct = new Set(images.flatMap((i) => i.diffIds));
    const oci = path.join(dir, 'multi.oci.tar');
    expect(ferry(['convert', MULTI, `oci-archive:${oci}`]).status).toBe(0);
    const blobs = tarHeaders(oci).filter((h) => h.name.startsWith('blobs/sha256/') && h.type === '0');
    // layers + 2 configs + 2 manifests
    expect(blobs).toHaveLength(distinct.size + 4);
    const legacy = path.join(dir, 'multi.legacy.tar');
    expect(ferry(['convert', MULTI, `docker-archive:${legacy}`, '--docker-layout', 'legacy']).status).toBe(0);
    const layerFiles = tarHeaders(legacy).filter((h) => h.name.endsWith('/layer.tar'));
    expect(layerFiles.filter((h) => h.type === '0')).toHaveLength(distinct.size);
    // docker save's convention: a later directory needing a stored layer links to it.
    for (const link of layerFiles.filter((h) => h.type === '2')) expect(link.linkname).toMatch(/^\.\.\/[a-f0-9]{64}\/layer\.tar$/);
    // manifest.json names regular files only (skopeo 1.9 reads a symlinked layer as size 0).
    const regular = new Set(layerFiles.filter((h) => h.type === '0').map((h) => h.name));
    const view = new ArchiveView(legacy);
    for (const item of view.json<Array<{Layers: string[]}>>('manifest.json')) for (const l of item.Layers) expect(regular.has(l)).toBe(true);
    view.close();
  });

  it('--image picks images by name (keeping only the names asked for) or by image ID; an unknown one lists what exists', () => {
    const dir = fresh('select');
    const images = describeArchive(MULTI, 'docker-archive');
    const parent = images.find((i) => i.names.length === 2)!;
    const byName = path.join(dir, 'by-name.tar');
    const r = ferry(['convert', MULTI, `docker-archive:${byName}`, '--image', 'ferry-fixture/edge:latest']);
    expect(r.status, r.stderr).toBe(0);
    expect(describeArchive(byName, 'docker-archive')).toEqual([{...parent, names: ['docker.io/ferry-fixture/edge:latest']}]);
    const child = images.find((i) => i.names.length === 1)!;
    const byId = path.join(dir, 'by-id');
    expect(ferry(['convert', MULTI, `oci:${byId}`, '--image', child.configDigest.slice(7, 19)]).status).toBe(0);
    expect(describeArchive(byId, 'oci')).toEqual([child]);
    // Repeatable flags do not swallow the arguments after them.
    const flagsFirst = path.join(dir, 'flags-first');
    const first = ferry(['convert', '--image', 'ferry-fixture/edge-child:1', '--tag', 'x/y:1', MULTI, `oci:${flagsFirst}`]);
    expect(first.status, first.stderr).toBe(0);
    expect(describeArchive(flagsFirst, 'oci')).toEqual([{...child, names: ['docker.io/x/y:1']}]);
    const missing = ferry(['convert', MULTI, `oci:${path.join(dir, 'none')}`, '--image', 'nope:1']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no image matches "nope:1" \(images: ferry-fixture\/edge:1, ferry-fixture\/edge:latest; ferry-fixture\/edge-child:1\)/);
  });

  it('a tag-only OCI ref.name (skopeo\'s oci:DIR:TAG) stays the ref.name of an OCI output and names nothing in a docker-archive', () => {
    const dir = fresh('tag-only');
    const layout = path.join(dir, 'src');
    cpSync(PODMAN_OCI, layout, {recursive: true});
    const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as {manifests: Array<{digest: string; annotations: Record<string, string>}>};
    index.manifests[0]!.annotations = {'org.opencontainers.image.ref.name': 'v1'};
    writeFileSync(path.join(layout, 'index.json'), JSON.stringify(index));
    for (const form of ['oci', 'oci-archive'] as const) {
      const out = path.join(dir, `out-${form}`);
      const r = ferry(['convert', `oci:${layout}`, `${form}:${out}`]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      const written = form === 'oci'
        ? readFileSync(path.join(out, 'index.json'), 'utf8')
        : execFileSync('tar', ['-xOf', out, 'index.json'], {encoding: 'utf8'});
      const entries = (JSON.parse(written) as typeof index).manifests;
      expect(entries.map((e) => [e.digest, e.annotations])).toEqual([[index.manifests[0]!.digest, {'org.opencontainers.image.ref.name': 'v1'}]]);
    }
    const archive = path.join(dir, 'out.tar');
    const r = ferry(['convert', `oci:${layout}`, `docker-archive:${archive}`]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/"v1" is a tag, not an image name/);
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', archive, 'manifest.json'], {encoding: 'utf8'})) as Array<{RepoTags: string[] | null}>;
    expect(manifest.map((m) => m.RepoTags ?? [])).toEqual([[]]);
  });

  it('prints one result line, or JSON with --json whose byte count is the file size', () => {
    const dir = fresh('summary');
    const out = path.join(dir, 'out.tar');
    const r = ferry(['convert', MULTI, `oci-archive:${out}`]);
    expect(r.stdout).toMatch(/^wrote oci-archive:.*out\.tar: 2 image\(s\), 9 blob\(s\), [\d.]+ KiB\n$/);
    const json = ferry(['convert', MULTI, `oci-archive:${out}`, '--force', '--json']);
    const summary = JSON.parse(json.stdout) as {format: string; images: number; blobs: number; bytes: number; source: {format: string}};
    expect(summary).toMatchObject({format: 'oci-archive', images: 2, blobs: 9, source: {format: 'docker-archive'}});
    expect(summary.bytes).toBe(statSync(out).size);
    expect(existsSync(out)).toBe(true);
  });

  it('notes go to stderr and --quiet silences them', () => {
    const dir = fresh('notes');
    const zstd = path.join(dir, 'zstd');
    expect(ferry(['convert', EDGE, `oci:${zstd}`, '--compress', 'zstd']).status).toBe(0);
    const noisy = ferry(['convert', `oci:${zstd}`, `docker-archive:${path.join(dir, 'a.tar')}`]);
    expect(noisy.stderr).toMatch(/^ferry: 4 zstd layer\(s\) stored uncompressed: docker 20\.10 cannot load zstd layers/);
    expect(noisy.stdout).toMatch(/^wrote docker-archive:/);
    const quiet = ferry(['convert', `oci:${zstd}`, `docker-archive:${path.join(dir, 'b.tar')}`, '--quiet']);
    expect(quiet.status).toBe(0);
    expect(quiet.stderr).toBe('');
  });
});
