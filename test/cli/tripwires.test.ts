/**
 * Issue 10's "input and CLI that a user trips on", each as a user meets it: devices and FIFOs as
 * destinations (never replaced), a layout holding other images, help and typos, skopeo's :REF suffix,
 * what auto-detection says, pipes as sources, JSON on failure, names that say why they are invalid,
 * non-UTF-8 names, and --platform on the layer commands.
 */
import {execFileSync, spawn, spawnSync} from 'node:child_process';
import {existsSync, mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {encodeHeader, writeChecksum} from '../../src/tar/write.js';
import {ferry, FIXTURES, requireBuiltCli} from '../helpers/cli.js';
import {peerMissing, runsAsRoot} from '../helpers/peers.js';
import {buildLegacy, dir as dirMember, file, packTar, withDiffIds} from '../hostile/kit.js';
import {makeMultiPlatformLayout, makeTmp, removeTmp, sha256} from '../ops/convert-fixtures.js';

const EDGE = path.join(FIXTURES, 'edge.docker-save.tar');
let dir: string;
beforeAll(() => {
  dir = makeTmp('ferry-trip-');
});
afterAll(() => removeTmp(dir));

function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines, stderr).toHaveLength(1);
  return lines[0]!;
}

describe('destinations that are devices, FIFOs, sockets', () => {
  it.runIf(runsAsRoot('writing into /dev/null'))('export to /dev/null writes into it, with or without --force, and /dev/null stays a device', () => {
    for (const extra of [[], ['--force']]) {
      const r = ferry(['export', EDGE, '/dev/null', ...extra]);
      expect(r.status, r.stderr).toBe(0);
      expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
    }
  });

  it('a FIFO destination gets the whole archive from its reader, and is still a FIFO afterwards', async () => {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = spawn('sh', ['-c', 'cat "$1" | sha256sum', 'sh', fifo], {stdio: ['ignore', 'pipe', 'inherit']});
    let digest = '';
    reader.stdout.on('data', (d: Buffer) => (digest += d.toString()));
    const closed = new Promise<void>((resolve) => reader.on('close', () => resolve()));
    const r = spawnSync(process.execPath, [requireBuiltCli(), 'convert', EDGE, `docker-archive:${fifo}`, '--force'], {encoding: 'utf8'});
    await closed;
    expect(r.status, r.stderr).toBe(0);
    expect(statSync(fifo).isFIFO()).toBe(true);
    const file = path.join(dir, 'same.tar');
    expect(ferry(['convert', EDGE, `docker-archive:${file}`]).status).toBe(0);
    expect(digest.split(' ')[0]).toBe(sha256(readFileSync(file)).slice(7));
  });

  it('a socket is refused, with --force too, and left alone', async () => {
    const sock = path.join(dir, 's.sock');
    const server = net.createServer().listen(sock);
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    try {
      const r = ferry(['convert', EDGE, `docker-archive:${sock}`, '--force']);
      expect(r.status).toBe(1);
      expect(oneLine(r.stderr)).toMatch(/is a socket; refusing to write an archive there/);
      expect(statSync(sock).isSocket()).toBe(true);
    } finally {
      server.close();
    }
  });
});

describe('an OCI layout that holds other images', () => {
  it('is refused naming them; --force replaces them all and says so', () => {
    const layout = path.join(dir, 'two');
    expect(ferry(['convert', path.join(FIXTURES, 'edge-multi.docker-save.tar'), `oci:${layout}`]).status).toBe(0);
    const refused = ferry(['convert', EDGE, `oci:${layout}`]);
    expect(refused.status).toBe(1);
    expect(oneLine(refused.stderr)).toMatch(/two holds 2 images \(ferry-fixture\/edge:1, ferry-fixture\/edge:latest; ferry-fixture\/edge-child:1\); --force replaces them all/);
    const forced = ferry(['convert', EDGE, `oci:${layout}`, '--force']);
    expect(forced.status, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/replacing .*two holds 2 images/);
  });
});

describe('help and typos', () => {
  it('`ferry help` and `ferry help convert` show help; an unknown command suggests the nearest, exit 2', () => {
    const all = ferry(['help']);
    expect(all.status).toBe(0);
    for (const command of ['convert', 'inspect', 'verify', 'export']) expect(all.stdout).toContain(command);
    const one = ferry(['help', 'convert']);
    expect(one.status).toBe(0);
    expect(one.stdout).toMatch(/USAGE\s+\$ ferry convert SOURCE DESTINATION/);
    const typo = ferry(['convrt', EDGE, 'oci:x']);
    expect(typo.status).toBe(2);
    expect(oneLine(typo.stderr)).toBe('ferry: "convrt" is not a ferry command; did you mean "convert"? (ferry help lists them)');
    const helpTypo = ferry(['help', 'inspct']);
    expect(helpTypo.status).toBe(2);
    expect(oneLine(helpTypo.stderr)).toMatch(/"inspct" is not a ferry command; did you mean "inspect"\?/);
  });
});

describe.skipIf(peerMissing('skopeo', 'umoci'))("skopeo's :REF suffix", () => {
  it('oci:DIR:REF writes ref.name REF (skopeo and umoci find it) and reads it back; no directory named DIR:REF', () => {
    const layout = path.join(dir, 'ref');
    const r = ferry(['convert', EDGE, `oci:${layout}:v1.4`]);
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(`${layout}:v1.4`)).toBe(false);
    expect(spawnSync('skopeo', ['inspect', '--raw', `oci:${layout}:v1.4`]).status).toBe(0);
    expect(spawnSync('umoci', ['ls', '--layout', layout], {encoding: 'utf8'}).stdout.trim()).toBe('v1.4');
    expect(ferry(['inspect', `oci:${layout}:v1.4`]).status).toBe(0);
    const archive = path.join(dir, 'named.tar');
    expect(ferry(['convert', path.join(FIXTURES, 'edge-multi.docker-save.tar'), `oci-archive:${archive}`]).status).toBe(0);
    const picked = JSON.parse(ferry(['inspect', '--json', `oci-archive:${archive}:docker.io/ferry-fixture/edge-child:1`]).stdout) as {images: Array<{names: string[]}>};
    expect(picked.images.map((i) => i.names)).toEqual([['docker.io/ferry-fixture/edge-child:1']]);
    const missing = ferry(['inspect', `oci-archive:${archive}:name:1`]);
    expect(missing.status).toBe(1);
    expect(oneLine(missing.stderr)).toMatch(/no image named "name:1"/);
  });
});

describe('what auto-detection says', () => {
  const rootfsWith = (name: string, manifest: string): string => {
    const out = path.join(dir, name);
    writeFileSync(out, packTar([file('index.html', '<h1>hi</h1>\n'), file('manifest.json', manifest)]));
    return out;
  };

  it('a file system tar with a web app manifest.json: what was detected, and rootfs: suggested', () => {
    const tar = rootfsWith('webapp.tar', '{"name": "my app", "start_url": "/"}');
    const r = ferry(['inspect', tar]);
    expect(r.status).toBe(1);
    expect(oneLine(r.stderr)).toMatch(/manifest\.json: expected a JSON array; detected a docker-archive by its top-level manifest\.json: if .*webapp\.tar is a file system tar, read it as rootfs:/);
    expect(ferry(['inspect', `rootfs:${tar}`]).status).toBe(0);
    const empty = ferry(['inspect', rootfsWith('empty-list.tar', '[]')]);
    expect(empty.status).toBe(1);
    expect(oneLine(empty.stderr)).toMatch(/detected a docker-archive \(a top-level manifest\.json\), but it lists no image; .* read it as rootfs:/);
  });

  it.runIf(!peerMissing('skopeo'))("skopeo's dir: layout is read (as dir:DIR or detected); the config is the one skopeo reports", () => {
    const layout = path.join(dir, 'skopeo-dir');
    execFileSync('skopeo', ['copy', '-q', `docker-archive:${EDGE}`, `dir:${layout}`]);
    const config = execFileSync('skopeo', ['inspect', '--raw', '--config', `dir:${layout}`]);
    for (const source of [`dir:${layout}`, layout]) {
      const r = ferry(['inspect', '--json', source]);
      expect(r.status, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as {format: string; images: Array<{configDigest: string}>}).images[0]!.configDigest).toBe(sha256(config));
    }
    expect(ferry(['verify', layout]).status).toBe(0);
  });

  it('import of a docker save tar warns that it is an image archive, not a file system', () => {
    const r = ferry(['import', EDGE, `oci:${path.join(dir, 'imported-archive')}`, '--tag', 'oops:1']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/looks like a docker save archive, not a file system/);
  });
});

describe('pipes as sources, and JSON on failure', () => {
  it('a FIFO and /dev/stdin are read like -', () => {
    const viaProcessSubstitution = spawnSync('bash', ['-c', `"${process.execPath}" "${requireBuiltCli()}" inspect --json <(cat "${EDGE}")`], {encoding: 'utf8'});
    expect(viaProcessSubstitution.status, viaProcessSubstitution.stderr).toBe(0);
    const expected = JSON.parse(ferry(['inspect', '--json', EDGE]).stdout) as {images: unknown[]};
    expect((JSON.parse(viaProcessSubstitution.stdout) as {images: unknown[]}).images).toEqual(expected.images);
    const viaDevStdin = ferry(['inspect', '--json', '/dev/stdin'], {input: readFileSync(EDGE)});
    expect(viaDevStdin.status, viaDevStdin.stderr).toBe(0);
    expect((JSON.parse(viaDevStdin.stdout) as {images: unknown[]}).images).toEqual(expected.images);
  });

  it('every --json command prints a JSON document when it fails to read its source', () => {
    const junk = path.join(dir, 'junk.bin');
    writeFileSync(junk, Buffer.alloc(4096, 7));
    for (const args of [['verify', '--json', junk], ['inspect', '--json', junk], ['ls', '--json', junk], ['convert', '--json', junk, `oci:${path.join(dir, 'never')}`]]) {
      const r = ferry(args);
      expect(r.status, args.join(' ')).toBe(1);
      const report = JSON.parse(r.stdout) as {ok: boolean; problems: string[]; error: {code: string}};
      expect(report.ok).toBe(false);
      expect(report.error.code).toBe('UNKNOWN_FORMAT');
      expect(report.problems[0]).toMatch(/junk\.bin: not an image archive/);
      expect(oneLine(r.stderr)).toMatch(/^ferry: .*junk\.bin: not an image archive/);
    }
  });
});

describe('names say why they are invalid', () => {
  it('--tag and --image explain the grammar; an invalid --image is a usage error (2)', () => {
    const upper = ferry(['convert', EDGE, `oci:${path.join(dir, 'n1')}`, '--tag', 'Upper/Case:1']);
    expect(upper.status).toBe(2);
    expect(oneLine(upper.stderr)).toMatch(/invalid --tag "Upper\/Case:1": .*repository names must be lowercase/);
    const long = ferry(['convert', EDGE, `oci:${path.join(dir, 'n2')}`, '--tag', `x:${'t'.repeat(129)}`]);
    expect(long.status).toBe(2);
    expect(oneLine(long.stderr)).toMatch(/the tag is 129 characters long \(at most 128\)/);
    const digest = ferry(['inspect', EDGE, '--image', 'x@sha256:abc']);
    expect(digest.status).toBe(2);
    expect(oneLine(digest.stderr)).toMatch(/"sha256:abc" is not a digest/);
    const unknown = ferry(['inspect', EDGE, '--image', 'nope:1']);
    expect(unknown.status).toBe(1);
  });
});

describe('names that are not UTF-8, or hold control characters', () => {
  it('ls --json gives the exact bytes, cat --path-base64 takes them back; plain ls escapes a newline', () => {
    const header = encodeHeader({name: 'data/cafX.txt', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 5, mtime: 0});
    header[8] = 0xe9; // 'X' → é in Latin-1: not UTF-8
    writeChecksum(header);
    const body = Buffer.concat([Buffer.from('latin'), Buffer.alloc(507)]);
    const layer = Buffer.concat([packTar([dirMember('data/'), file('data/evil\nname', 'x')]).subarray(0, -1024), header, body, Buffer.alloc(1024)]);
    const archive = path.join(dir, 'names.tar');
    writeFileSync(archive, packTar(buildLegacy([withDiffIds({config: {architecture: 'amd64', os: 'linux', config: {}, rootfs: {type: 'layers', diff_ids: []}}, layers: [layer], tags: ['names:1']})])));
    const listed = JSON.parse(ferry(['ls', '--json', archive, '/data']).stdout) as Array<{path: string; pathBytes?: string}>;
    const latin = listed.find((e) => e.pathBytes !== undefined)!;
    expect(Buffer.from(latin.pathBytes!, 'base64')).toEqual(Buffer.from([...Buffer.from('/data/caf'), 0xe9, ...Buffer.from('.txt')]));
    const cat = ferry(['cat', archive, '--path-base64', latin.pathBytes!]);
    expect(cat.status, cat.stderr).toBe(0);
    expect(cat.stdout).toBe('latin');
    const plain = ferry(['ls', archive, '/data']).stdout;
    expect(plain).toContain('/data/evil\\x0aname');
    expect(plain.split('\n').filter((l) => l.includes('evil'))).toHaveLength(1);
  });
});

describe('--platform on the layer commands', () => {
  it('export, ls, cat and squash take --platform; without it the note names the platform chosen', () => {
    const layout = path.join(dir, 'mp');
    mkdirSync(layout);
    makeMultiPlatformLayout(path.join(FIXTURES, 'edge.podman.oci'), layout, {absentArm64: false, name: 'docker.io/ferry-test/mp:1'});
    const chosen = ferry(['ls', `oci:${layout}`, '/srv/keep.txt']);
    expect(chosen.status, chosen.stderr).toBe(0);
    expect(chosen.stderr).toMatch(/chose platform linux\/amd64 of linux\/amd64, linux\/arm64\/v8/);
    for (const args of [
      ['ls', `oci:${layout}`, '/srv/keep.txt', '--platform', 'linux/arm64'],
      ['cat', `oci:${layout}`, '/srv/keep.txt', '--platform', 'linux/arm64'],
      ['export', `oci:${layout}`, path.join(dir, 'arm.tar'), '--platform', 'linux/arm64'],
      ['squash', `oci:${layout}`, `oci:${path.join(dir, 'arm-squashed')}`, '--platform', 'linux/arm64'],
    ]) {
      const r = ferry(args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stderr).not.toMatch(/chose platform/);
    }
    const none = ferry(['cat', `oci:${layout}`, '/srv/keep.txt', '--platform', 'linux/s390x']);
    expect(none.status).toBe(1);
    expect(oneLine(none.stderr)).toMatch(/no image for platform linux\/s390x \(present: linux\/amd64, linux\/arm64\/v8\)/);
  });
});
