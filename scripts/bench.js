#!/usr/bin/env node
// `npm run bench`: ferry against the peers present on this machine, on the same archives, in the same run.
// Figures are medians of several runs (wall seconds and peak RSS from /usr/bin/time -v); results go to
// docs/benchmarks.md with the machine's description. BENCH_SCALE=small runs a reduced smoke version (CI).
// `--only GROUP` (or BENCH_ONLY=GROUP) runs one group of rows: core (convert, export, squash, inspect,
// verify), daemon (ferry load / save / squash against a private dockerd), bundle (bundle create / serve /
// apply), registry (ferry push / pull against skopeo on a loopback docker-registry 2.8.2, a pull killed
// halfway, a second push of 20 images, peak RSS). With --only the results go to
// docs/benchmarks-<group>[-smoke].md.
// `--quick`: a ~2-minute subset (small images, one run, the core rows and start-up) into
// docs/benchmarks-quick.md. `--check`: run as usual but write to a temp file, then compare every ferry
// row's ratio to its peer or floor with the committed document of the same scale (docs/benchmarks.md,
// -quick.md, -smoke.md, -<group>.md); more than 25% worse on any row exits 1, naming the rows.
import {spawn, spawnSync} from 'node:child_process';
import {createHash, randomBytes} from 'node:crypto';
import net from 'node:net';
import {existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {planImage, writeDockerArchive} from './bench-images.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FERRY = [process.execPath, path.join(ROOT, 'bin/run.js')];
const QUICK = process.argv.includes('--quick');
const CHECK = process.argv.includes('--check');
const SCALE = process.env.BENCH_SCALE ?? (process.argv.includes('--small') || QUICK ? 'small' : 'full');
const SMALL = SCALE === 'small';
const onlyAt = process.argv.indexOf('--only');
const ONLY = process.env.BENCH_ONLY ?? (onlyAt >= 0 ? process.argv[onlyAt + 1] : process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length)) ?? (QUICK ? 'core' : undefined);
const GROUPS = ['core', 'built', 'daemon', 'bundle', 'registry'];
if (ONLY !== undefined && !GROUPS.includes(ONLY)) {
  process.stderr.write(`bench: --only ${ONLY}: expected one of ${GROUPS.join(', ')}\n`);
  process.exit(2);
}
const RUN_CORE = ONLY === undefined || ONLY === 'core';
const RUN_DAEMON = ONLY === undefined || ONLY === 'daemon';
const RUN_BUNDLE = ONLY === undefined || ONLY === 'bundle';
const RUN_REGISTRY = ONLY === undefined || ONLY === 'registry';
const RUNS = Number(process.env.BENCH_RUNS ?? (SMALL && !QUICK ? 1 : 3));
/** Peers that take minutes on the large image (umoci unpack, docker export | import) run this often. */
const SLOW_RUNS = SMALL ? 1 : Math.min(RUNS, 2);
const SIZES = SMALL ? {medium: 24e6, large: 60e6, huge: 200e6} : {medium: 300e6, large: 2e9, huge: 8e9};
/** The committed document this run's figures belong to (what --check compares with). */
const DOC = path.join(ROOT, 'docs', QUICK ? 'benchmarks-quick.md' : `benchmarks${ONLY ? `-${ONLY}` : ''}${SMALL ? '-smoke' : ''}.md`);
const OUT_DOC = process.env.BENCH_OUT ?? (CHECK ? path.join(os.tmpdir(), `ferry-bench-check-${process.pid}.md`) : DOC);
const DOCKER = '/usr/bin/docker'; // /usr/local/bin/docker is an unrelated newer client (docs/peers.md)
const STARTED = Date.now();
const LOAD_AT_START = os.loadavg()[0].toFixed(2);

const log = (m) => process.stderr.write(`bench: ${m}\n`);
const has = (tool) => spawnSync('sh', ['-c', `command -v ${tool}`], {stdio: 'ignore'}).status === 0;

const work = mkdtempSync(path.join(process.env.BENCH_TMPDIR ?? os.tmpdir(), 'ferry-bench-'));
const cleanups = [];
const cleanup = async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(work, {recursive: true, force: true});
};
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => cleanup().finally(() => process.exit(130)));

/** Runs `argv` under /usr/bin/time -v; returns {seconds, rssMiB} or throws with stderr. */
function timed(argv, {env, shell, stdout} = {}) {
  const timeFile = path.join(work, 'time.txt');
  const cmd = shell ? ['sh', '-c', argv] : argv;
  const r = spawnSync('/usr/bin/time', ['-v', '-o', timeFile, ...cmd], {env: {...process.env, ...env}, stdio: ['ignore', stdout ? 'pipe' : 'ignore', 'pipe'], maxBuffer: 1 << 26});
  if (r.status !== 0) throw new Error(`${shell ? argv : argv.join(' ')} failed (${r.status}): ${r.stderr.toString().slice(-600)}`);
  const text = readFileSync(timeFile, 'utf8');
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(text);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(text);
  const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
  return {seconds, rssMiB: Number(rss[1]) / 1024, ...(stdout ? {stdout: r.stdout.toString('utf8')} : {})};
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};

/** Median of `runs` runs (peak RSS: the worst run); `prepare` runs before each (e.g. removing the previous output), untimed. */
function measure(argv, {prepare, runs = RUNS, env, shell} = {}) {
  const results = [];
  for (let i = 0; i < runs; i++) {
    prepare?.();
    results.push(timed(argv, {env, shell}));
  }
  return {seconds: median(results.map((r) => r.seconds)), rssMiB: Math.max(...results.map((r) => r.rssMiB))};
}

/** A peer that may be broken on this machine: its failure is logged and its column left empty. */
function tryMeasure(what, argv, options) {
  try {
    return measure(argv, options);
  } catch (e) {
    log(`${what} failed, column left empty: ${e.message.split('\n')[0]}`);
    return undefined;
  }
}

const rm = (p) => () => rmSync(p, {recursive: true, force: true});
const sizeOf = (p) => {
  const st = statSync(p);
  if (!st.isDirectory()) return st.size;
  return readdirSync(p, {recursive: true}).reduce((n, f) => {
    const s = statSync(path.join(p, f));
    return n + (s.isFile() ? s.size : 0);
  }, 0);
};

/** A private dockerd on a unix socket, stopped by its pid; overlay2 where the kernel has it (docker's default), else vfs. */
async function startDockerd(extraArgs = []) {
  for (const driver of ['overlay2', 'vfs']) {
    const root = mkdtempSync('/tmp/fbd-');
    const host = `unix://${root}/docker.sock`;
    const child = spawn('dockerd', ['--storage-driver', driver, '--iptables=false', '--ip6tables=false', '--bridge=none', '--ip-forward=false', '--ip-masq=false', '-H', host, '--data-root', `${root}/data`, '--exec-root', `${root}/exec`, '--pidfile', `${root}/pid`, ...extraArgs], {stdio: 'ignore'});
    const env = {DOCKER_HOST: host, DOCKER_CONFIG: `${root}/client`};
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const done = new Promise((r) => child.once('exit', r));
        process.kill(child.pid, 'SIGTERM');
        await done;
      }
      rmSync(root, {recursive: true, force: true});
    };
    let up = false;
    for (let i = 0; i < 120 && child.exitCode === null; i++) {
      if (spawnSync(DOCKER, ['version'], {env: {...process.env, ...env}, stdio: 'ignore'}).status === 0) {
        up = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    if (up) return {env, stop, driver};
    await stop();
    log(`dockerd with ${driver} did not start`);
  }
  return undefined;
}

let BUILT_NOTE = '';

/**
 * The "built" image: a real `docker build` (the classic builder, FROM scratch, nothing from the network)
 * of mixed content in 9 layers — busybox and the links its RUN step makes, C headers, the Python and Perl
 * libraries and vim's runtime (text trees), container tools' binaries, random data written by a RUN step,
 * and a last RUN that deletes a tree and writes files (whiteouts) — saved by `docker save`. What it holds
 * comes from this machine's /usr, so its size is noted in the document.
 */
function buildRealImage(d, file) {
  const ctx = path.join(work, 'build-context');
  mkdirSync(ctx, {recursive: true});
  const trees = {include: '/usr/include', python: '/usr/lib/python3.11', perl: '/usr/share/perl', vim: '/usr/share/vim'};
  const bins = ['skopeo', 'ctr', 'buildah'].map((b) => `/usr/bin/${b}`).filter(existsSync);
  for (const [name, from] of Object.entries(trees)) if (!existsSync(from)) mkdirSync(path.join(ctx, name), {recursive: true});
  const copy = spawnSync('sh', ['-c', `cp /usr/bin/busybox "$0" && mkdir -p "$0/bin" && ${Object.entries(trees).filter(([, from]) => existsSync(from)).map(([name, from]) => `cp -a ${from} "$0/${name}"`).join(' && ')} && cp ${bins.join(' ')} "$0/bin"`, ctx], {stdio: 'inherit'});
  if (copy.status !== 0) throw new Error('bench: could not fill the build context');
  writeFileSync(
    path.join(ctx, 'Dockerfile'),
    [
      'FROM scratch',
      'COPY busybox /bin/busybox',
      'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
      'COPY include/ /usr/include/',
      'COPY python/ /usr/lib/python3.11/',
      'COPY perl/ /usr/share/perl/',
      'COPY bin/ /usr/local/bin/',
      'RUN mkdir -p /opt/data && for i in 1 2 3 4 5 6 7 8; do head -c 4194304 /dev/urandom > /opt/data/blob$i; done',
      'COPY vim/ /usr/share/vim/',
      'RUN rm -rf /usr/include/linux /usr/share/perl/*/unicore && mkdir -p /etc/app && seq 1 20000 > /etc/app/ids && echo built > /etc/app/stamp',
      '',
    ].join('\n'),
  );
  const env = {...process.env, ...d.env, DOCKER_BUILDKIT: '0'};
  const build = spawnSync(DOCKER, ['build', '-q', '--network', 'none', '-t', 'bench/built:1', ctx], {env, stdio: ['ignore', 'ignore', 'inherit']});
  if (build.status !== 0) throw new Error('bench: docker build of the built image failed');
  const save = spawnSync(DOCKER, ['save', '-o', file, 'bench/built:1'], {env, stdio: ['ignore', 'ignore', 'inherit']});
  if (save.status !== 0) throw new Error('bench: docker save of the built image failed');
  spawnSync(DOCKER, ['rmi', '-f', 'bench/built:1'], {env, stdio: 'ignore'});
  rmSync(ctx, {recursive: true, force: true});
  return {file, bytes: sizeOf(file)};
}

// ---------------------------------------------------------------------------------------------
// Air-gap rows (--only bundle): bundle create from a loopback docker-registry vs skopeo sync, docker
// pull through ferry serve vs through the registry, peak RSS creating and applying a large bundle.
// ---------------------------------------------------------------------------------------------

/** Sizes: each of the two shared bases, each image's own layer, the large image of the RSS rows. */
const BUNDLE_SIZES = SMALL ? {base: 8e6, app: 1e6, big: 200e6, part: '64M'} : {base: 150e6, app: 15e6, big: 10e9, part: '4G'};
let BUNDLE_IMAGES_NOTE = '';

/**
 * The daemon rows, on an image the dockerd `d` does not hold yet: `ferry load` against `docker load`
 * of the same archive; `ferry save` against `docker save`; then `ferry squash` daemon → daemon
 * (all layers into one, loaded back as a new name) against the floor of any round trip, `docker
 * save | docker load` of the same image (docker then applies nothing: the layers are there), and
 * against the round trip that re-applies every layer (save to a file, rmi, load).
 */
function daemonRows(d, kind, src, bytes, out) {
  const name = `bench/${kind}:1`;
  const squashed = `bench/${kind}:squashed`;
  const denv = d.env;
  const docker = (args) => spawnSync(DOCKER, args, {env: {...process.env, ...denv}, stdio: 'ignore'}).status === 0;
  const absent = (image) => () => docker(['rmi', '-f', image]);
  const present = () => {
    if (!docker(['image', 'inspect', name])) timed([DOCKER, 'load', '-i', src], {env: denv});
  };
  const fLoad = tryMeasure('ferry load', [...FERRY, 'load', src, '--quiet'], {env: denv, prepare: absent(name), runs: SLOW_RUNS});
  const dLoad = tryMeasure('docker load', [DOCKER, 'load', '-i', src], {env: denv, prepare: absent(name), runs: SLOW_RUNS});
  if (fLoad) row(`ferry load vs docker load (${d.driver})`, kind, bytes, fLoad, {peerName: 'docker load -i', peer: dLoad});
  if (fLoad && dLoad) target(`${kind}: ferry load no slower than docker load`, fLoad.seconds <= dLoad.seconds, `ferry ${fLoad.seconds.toFixed(1)} s vs docker ${dLoad.seconds.toFixed(1)} s`);

  present();
  const fSave = tryMeasure('ferry save', [...FERRY, 'save', name, `${out}.fsave.tar`, '--quiet'], {env: denv, prepare: rm(`${out}.fsave.tar`)});
  const dSave = tryMeasure('docker save', [DOCKER, 'save', '-o', `${out}.dsave.tar`, name], {env: denv, prepare: rm(`${out}.dsave.tar`)});
  rmSync(`${out}.fsave.tar`, {force: true});
  if (fSave) row(`ferry save vs docker save (${d.driver})`, kind, bytes, fSave, {peerName: 'docker save -o', peer: dSave});

  const fSq = tryMeasure('ferry squash docker-daemon: → docker-daemon:', [...FERRY, 'squash', `docker-daemon:${name}`, `docker-daemon:${squashed}`, '--quiet'], {env: denv, prepare: () => (present(), absent(squashed)()), runs: SLOW_RUNS});
  present();
  const floor = tryMeasure('docker save | docker load', `${DOCKER} save ${name} | ${DOCKER} load >/dev/null`, {shell: true, env: denv});
  // Re-applying every layer needs the image gone before the load: save to a file first (the file's write is in the time).
  const full = tryMeasure('docker save -o, rmi, load -i', `${DOCKER} save -o ${out}.dsave.tar ${name} && ${DOCKER} rmi ${name} >/dev/null && ${DOCKER} load -i ${out}.dsave.tar >/dev/null`, {shell: true, env: denv, prepare: () => (present(), rm(`${out}.dsave.tar`)()), runs: SLOW_RUNS});
  rmSync(`${out}.dsave.tar`, {force: true});
  if (fSq) row(`squash docker-daemon: → docker-daemon: (${d.driver})`, kind, bytes, fSq, {peerName: 'docker save -o + rmi + load -i (layers re-applied)', peer: full, floorName: 'docker save | docker load', floor});
  absent(squashed)();
}

/** docker-registry (distribution 2.8) on 127.0.0.1 with its own config and storage; stopped by its pid. */
async function startBenchRegistry(name) {
  const root = mkdtempSync(path.join(work, `reg-${name}-`));
  const port = await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
  const host = `127.0.0.1:${port}`;
  writeFileSync(path.join(root, 'config.yml'), ['version: 0.1', 'log:', '  level: error', 'storage:', '  filesystem:', `    rootdirectory: ${JSON.stringify(path.join(root, 'storage'))}`, 'http:', `  addr: ${JSON.stringify(host)}`, `  secret: ${JSON.stringify(randomBytes(16).toString('hex'))}`, ''].join('\n'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
  const child = spawn('docker-registry', ['serve', path.join(root, 'config.yml')], {stdio: 'ignore', env});
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const done = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      await done;
    }
  };
  cleanups.push(stop);
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`http://${host}/v2/`).then((r) => r.ok, () => false);
    if (ok) return {host, stop, storage: path.join(root, 'storage')};
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry on ${host} did not start`);
}

/** An uncompressed layer tar of `bytes` (random, or zeros) under data/NAME, made by GNU tar. */
function makeLayer(dir, name, bytes, kind = 'random') {
  const src = path.join(dir, `src-${name}`);
  mkdirSync(path.join(src, 'data'), {recursive: true});
  const file = path.join(src, 'data', `${name}.bin`);
  if (kind === 'zeros') spawnSync('truncate', ['-s', String(bytes), file]);
  else spawnSync('sh', ['-c', `head -c ${bytes} /dev/urandom > ${file}`]);
  const tarFile = path.join(dir, `${name}.tar`);
  const r = spawnSync('tar', ['--numeric-owner', '--owner=0', '--group=0', '--mtime=@1700000000', '-cf', tarFile, '-C', src, 'data']);
  if (r.status !== 0) throw new Error(`tar: ${r.stderr}`);
  rmSync(src, {recursive: true, force: true});
  return tarFile;
}

/** An OCI layout holding images made of shared layer tars: {name, layers: [tar files]}. Blobs written once. */
function writeLayout(dir, images) {
  const blobs = path.join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, {recursive: true});
  const sha = (buf) => createHash('sha256').update(buf).digest('hex');
  const layerDesc = new Map();
  const blob = (bytes) => {
    const hex = sha(bytes);
    writeFileSync(path.join(blobs, hex), bytes);
    return {digest: `sha256:${hex}`, size: bytes.length};
  };
  const manifests = [];
  for (const image of images) {
    const layers = image.layers.map((file) => {
      if (!layerDesc.has(file)) {
        const r = spawnSync('sha256sum', [file], {encoding: 'utf8'});
        const hex = r.stdout.slice(0, 64);
        spawnSync('ln', ['-f', file, path.join(blobs, hex)]);
        layerDesc.set(file, {mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${hex}`, size: statSync(file).size});
      }
      return layerDesc.get(file);
    });
    const config = blob(Buffer.from(JSON.stringify({architecture: 'amd64', os: 'linux', config: {Cmd: ['/bin/sh']}, rootfs: {type: 'layers', diff_ids: layers.map((l) => l.digest)}})));
    const manifest = blob(Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: {mediaType: 'application/vnd.oci.image.config.v1+json', ...config}, layers})));
    manifests.push({mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: {'org.opencontainers.image.ref.name': image.name}});
  }
  writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(path.join(dir, 'index.json'), JSON.stringify({schemaVersion: 2, manifests}));
}

async function bundleRows() {
  if (!has('docker-registry') || !has('skopeo')) {
    log('docker-registry or skopeo absent: bundle rows skipped');
    return;
  }
  const dir = path.join(work, 'bundle-rows');
  mkdirSync(dir, {recursive: true});
  const t = Date.now();
  // Ten images on two shared bases (five each), each with a layer of its own.
  const bases = [makeLayer(dir, 'base-1', BUNDLE_SIZES.base), makeLayer(dir, 'base-2', BUNDLE_SIZES.base)];
  const images = Array.from({length: 10}, (_, i) => ({name: `bench/app:${i + 1}`, layers: [bases[i % 2], makeLayer(dir, `app-${i + 1}`, BUNDLE_SIZES.app)]}));
  const layout = path.join(dir, 'layout');
  writeLayout(layout, images);
  const bigLayout = path.join(dir, 'big-layout');
  writeLayout(bigLayout, [{name: 'bench/big:1', layers: [bases[0], makeLayer(dir, 'big', BUNDLE_SIZES.big, 'zeros')]}]);
  const reg = await startBenchRegistry('source');
  // ferry push keeps the blobs as they are (skopeo would gzip them for a registry).
  for (const src of [layout, bigLayout]) {
    const r = spawnSync(FERRY[0], [FERRY[1], 'push', `oci:${src}`, `docker://${reg.host}`, '--all', '--quiet'], {encoding: 'utf8'});
    if (r.status !== 0) throw new Error(`ferry push: ${r.stderr}`);
  }
  rmSync(layout, {recursive: true, force: true});
  rmSync(bigLayout, {recursive: true, force: true});
  const unique = 2 * BUNDLE_SIZES.base + 10 * BUNDLE_SIZES.app;
  BUNDLE_IMAGES_NOTE = `Air-gap rows: ten images in a loopback docker-registry 2.8, on two shared bases of ${(BUNDLE_SIZES.base / 1e6).toFixed(0)} MB (five images each) with a ${(BUNDLE_SIZES.app / 1e6).toFixed(0)} MB layer of their own (${(unique / 1e6).toFixed(0)} MB of distinct blobs, random, uncompressed), and one image of ${(BUNDLE_SIZES.big / 1e9).toFixed(1)} GB (zeros) for the memory rows, bundled with --max-part-size ${BUNDLE_SIZES.part}; generated in ${((Date.now() - t) / 1000).toFixed(0)} s, never committed.`;
  log(`bundle rows: images pushed in ${((Date.now() - t) / 1000).toFixed(1)} s`);

  // 1. bundle create of the ten vs skopeo sync of the repository (every tag) to dir: layouts.
  const refs = images.map((i) => `${reg.host}/${i.name}`);
  const out = path.join(dir, 'bundle');
  const fCreate = measure([...FERRY, 'bundle', 'create', ...refs, '-o', out, '--quiet'], {prepare: rm(out)});
  const syncOut = path.join(dir, 'sync');
  const sSync = tryMeasure('skopeo sync', ['skopeo', 'sync', '--src', 'docker', '--dest', 'dir', '--src-tls-verify=false', `${reg.host}/bench/app`, syncOut], {prepare: () => (rm(syncOut)(), mkdirSync(syncOut))});
  const syncBytes = existsSync(syncOut) ? sizeOf(syncOut) : 0;
  rmSync(syncOut, {recursive: true, force: true});
  row('bundle create: 10 images, 2 shared bases (vs skopeo sync --dest dir)', 'bundle', unique, fCreate, {peerName: 'skopeo sync', peer: sSync});
  if (sSync) target('bundle create of 10 images faster than skopeo sync to dir', sSync.seconds / fCreate.seconds > 1, `×${(sSync.seconds / fCreate.seconds).toFixed(2)}; bundle ${(sizeOf(out) / 1e6).toFixed(0)} MB, skopeo's dirs ${(syncBytes / 1e6).toFixed(0)} MB`);

  // 2. docker pull through ferry serve (of that bundle) vs through the registry.
  const hasDocker = existsSync(DOCKER) && has('dockerd') && process.getuid?.() === 0;
  if (hasDocker) {
    const port = await new Promise((resolve) => {
      const srv = net.createServer();
      srv.listen(0, '127.0.0.1', () => {
        const p = srv.address().port;
        srv.close(() => resolve(p));
      });
    });
    const served = spawn(FERRY[0], [FERRY[1], 'serve', out, '--listen', `127.0.0.1:${port}`], {stdio: 'ignore'});
    const stopServe = async () => {
      if (served.exitCode === null && served.signalCode === null) {
        const done = new Promise((r) => served.once('exit', r));
        process.kill(served.pid, 'SIGTERM');
        await done;
      }
    };
    cleanups.push(stopServe);
    for (let i = 0; i < 200 && !(await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false)); i++) await new Promise((r) => setTimeout(r, 100));
    const d = await startDockerd(['--insecure-registry', reg.host, '--insecure-registry', `127.0.0.1:${port}`]);
    if (d) {
      cleanups.push(d.stop);
      try {
        const pull = (host) => `${DOCKER} pull -q ${host}/bench/app:1 >/dev/null`;
        const rmi = (host) => () => spawnSync(DOCKER, ['rmi', '-f', `${host}/bench/app:1`], {env: {...process.env, ...d.env}, stdio: 'ignore'});
        const viaServe = measure(pull(`127.0.0.1:${port}`), {shell: true, env: d.env, prepare: rmi(`127.0.0.1:${port}`), runs: Math.max(RUNS, 3)});
        rmi(`127.0.0.1:${port}`)();
        const viaRegistry = measure(pull(reg.host), {shell: true, env: d.env, prepare: rmi(reg.host), runs: Math.max(RUNS, 3)});
        row(`docker pull through ferry serve (vs registry 2.8; ${d.driver})`, 'bundle', BUNDLE_SIZES.base + BUNDLE_SIZES.app, viaServe, {peerName: 'docker pull from registry 2.8', peer: viaRegistry});
        target('docker pull through ferry serve at least as fast as through registry 2.8 (ratio ≥ 1)', viaRegistry.seconds / viaServe.seconds >= 1, `×${(viaRegistry.seconds / viaServe.seconds).toFixed(2)} (serve ${viaServe.seconds.toFixed(2)} s, registry ${viaRegistry.seconds.toFixed(2)} s)`);
      } finally {
        await d.stop();
        cleanups.splice(cleanups.indexOf(d.stop), 1);
      }
    }
    await stopServe();
    cleanups.splice(cleanups.indexOf(stopServe), 1);
  } else log('dockerd absent (or not root): docker pull row skipped');
  rmSync(out, {recursive: true, force: true});

  // 3. Peak RSS creating and applying a large bundle (spanning parts), into a second registry.
  const bigOut = path.join(dir, 'big-bundle');
  const cBig = timed([...FERRY, 'bundle', 'create', `${reg.host}/bench/big:1`, '-o', bigOut, '--max-part-size', BUNDLE_SIZES.part, '--quiet']);
  const bigBytes = sizeOf(bigOut);
  rows.push({task: 'peak RSS: bundle create (spanning parts)', image: 'bundle', bytes: bigBytes, ferry: cBig});
  log(`bundle create ${(bigBytes / 1e6).toFixed(0)} MB: ${cBig.seconds.toFixed(2)} s, peak RSS ${cBig.rssMiB.toFixed(0)} MiB`);
  const site = await startBenchRegistry('site');
  const aBig = timed([...FERRY, 'bundle', 'apply', bigOut, `docker://${site.host}/site`, '--quiet']);
  rows.push({task: 'peak RSS: bundle apply to a registry', image: 'bundle', bytes: bigBytes, ferry: aBig});
  log(`bundle apply ${(bigBytes / 1e6).toFixed(0)} MB: ${aBig.seconds.toFixed(2)} s, peak RSS ${aBig.rssMiB.toFixed(0)} MiB`);
  const worst = Math.max(cBig.rssMiB, aBig.rssMiB) * 1.048576;
  target(`peak RSS ≤ 200 MB creating or applying a ${(bigBytes / 1e9).toFixed(1)} GB bundle`, worst <= 200, `create ${(cBig.rssMiB * 1.048576).toFixed(0)} MB, apply ${(aBig.rssMiB * 1.048576).toFixed(0)} MB`);
  await site.stop();
  await reg.stop();
  rmSync(dir, {recursive: true, force: true});
}

function machine() {
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  const df = spawnSync('df', ['-h', '--output=source,fstype,size,avail', work], {encoding: 'utf8'}).stdout.trim().split('\n').pop();
  const version = (tool, args) => (has(tool) ? spawnSync(tool, args, {encoding: 'utf8'}).stdout.split('\n')[0].trim() : 'absent');
  return [
    `- cores: ${os.availableParallelism()} × ${cpu}; memory ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    `- node ${process.version}; ${os.type()} ${os.release()}`,
    `- disk (temp dir): ${df}`,
    `- peers: skopeo ${version('skopeo', ['--version'])}; docker ${existsSync(DOCKER) ? version(DOCKER, ['--version']) : 'absent'}; umoci ${version('umoci', ['--version'])}; ${version('sha256sum', ['--version'])}; ${version('docker-registry', ['--version'])}`,
  ].join('\n');
}

const rows = [];
const targets = [];
const ratio = (slow, fast) => (slow && fast ? slow.seconds / fast.seconds : undefined);
function row(task, image, bytes, ferryResult, {peerName, peer, floorName, floor} = {}) {
  rows.push({task, image, bytes, ferry: ferryResult, peerName, peer, floorName, floor});
  const vsPeer = ratio(peer, ferryResult);
  const vsFloor = ratio(floor, ferryResult);
  log(`${image} ${task}: ferry ${ferryResult.seconds.toFixed(2)} s (${ferryResult.rssMiB.toFixed(0)} MiB)${peer ? `, ${peerName} ${peer.seconds.toFixed(2)} s → ×${vsPeer.toFixed(2)}` : ''}${floor ? `, ${floorName} ${floor.seconds.toFixed(2)} s → ×${vsFloor.toFixed(2)} of its speed` : ''}`);
}
function target(name, holds, detail) {
  targets.push({name, holds, detail});
  log(`target ${holds ? 'HOLDS' : 'MISSED'}: ${name} (${detail})`);
}

const MiB = 1 << 20;
/** The registry rows' own images: a blob to kill a pull in, a layer for peak RSS, and shared bases for 20 images. */
const REGISTRY_SIZES = SMALL ? {resume: 128 * MiB, rss: 256 * MiB, bases: [6e6, 3e6]} : {resume: 1024 * MiB, rss: 4096 * MiB, bases: [120e6, 60e6]};
const FLEET = 20;
let REGISTRY_IMAGES_NOTE = '';
const registryNote = (large) => `Registry rows: Debian's docker-registry (distribution 2.8.2) on 127.0.0.1, plain HTTP, filesystem storage in the temp dir; each push run goes to a registry of its own, started for it (nothing is there, and skopeo's blob-info cache has no place to mount from); the image pushed and pulled is the large one (${(large.bytes / 1e6).toFixed(0)} MB / 5 layers, uncompressed); skopeo copies with --preserve-digests (the same uncompressed blobs ferry sends; its default gzips them on the way, a row of its own); the resume blob is ${REGISTRY_SIZES.resume / MiB} MiB of random data, the peak-RSS layer ${REGISTRY_SIZES.rss / MiB} MiB of zeros, the ${FLEET} images share two base layers of ${REGISTRY_SIZES.bases.map((b) => `${(b / 1e6).toFixed(0)} MB`).join(' and ')}.`;

/** Where a pull keeps a blob's partial copy: `.DEST.ferry-pull/sha256-HEX.part` beside DEST. */
const partFile = (dest, digest) => path.join(path.dirname(dest), `.${path.basename(dest)}.ferry-pull`, `sha256-${digest.slice('sha256:'.length)}.part`);

/** Starts `ferry pull`, SIGKILLs it by its pid once `part` holds `bytes`; the size it was killed at (null: it finished first). */
async function killPullAt(args, env, part, bytes) {
  const child = spawn(FERRY[0], [...FERRY.slice(1), ...args], {env: {...process.env, ...env}, stdio: 'ignore'});
  const exited = new Promise((r) => child.once('exit', r));
  const deadline = Date.now() + 600_000;
  let size = 0;
  while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
    try {
      size = statSync(part).size;
    } catch {
      size = 0;
    }
    if (size >= bytes) {
      process.kill(child.pid, 'SIGKILL');
      break;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  await exited;
  try {
    return statSync(part).size;
  } catch {
    return null;
  }
}

/** One layer of `size` bytes (random or zeros) as a legacy docker-archive. */
function oneLayerImage(file, name, size, kind) {
  return writeDockerArchive(file, name, [{dirs: ['data'], files: [{name: 'data/blob.bin', size, kind}], whiteouts: []}]);
}

/**
 * Registry rows, against docker-registry 2.8.2 on loopback: push and pull of the large image against
 * skopeo copy both ways, a pull killed halfway through a big blob and run again, a second push of
 * images that share bases, and peak RSS pushing and pulling one big layer.
 */
async function registryRows(images) {
  if (!has('docker-registry')) {
    log('docker-registry absent: registry rows skipped');
    return;
  }
  const large = images?.large ?? writeDockerArchive(path.join(work, 'large.docker.tar'), 'bench/large:1', planImage('large', SIZES.large));
  const hasSkopeo = has('skopeo');
  const reg = await startBenchRegistry('rows');
  REGISTRY_IMAGES_NOTE = registryNote(large);
  const home = mkdtempSync(path.join(work, 'home-'));
  // Credentials, state and temp files of every tool in the work dir; nothing of the user's is read.
  const env = {HOME: home, DOCKER_CONFIG: path.join(home, '.docker'), XDG_CONFIG_HOME: path.join(home, '.config'), XDG_RUNTIME_DIR: path.join(home, 'run'), FERRY_STATE_DIR: path.join(home, 'state'), REGISTRY_AUTH_FILE: path.join(home, 'auth.json'), TMPDIR: work};
  try {
    log(`docker-registry up on ${reg.host}`);
    let seq = 0;
    const fresh = (tool) => `${reg.host}/bench/${tool}-${++seq}:1`;

    // (1) push, each run into a registry of its own: every blob goes up, and skopeo's blob-info cache
    // (kept by registry host:port) cannot offer a mount from an earlier run.
    const pushRuns = async (what, argvFor, runs = RUNS) => {
      try {
        const results = [];
        for (let i = 0; i < runs; i++) {
          const own = await startBenchRegistry(`push-${i}`);
          try {
            results.push(timed(argvFor(own.host), {env}));
          } finally {
            await own.stop();
            rmSync(path.dirname(own.storage), {recursive: true, force: true});
          }
        }
        return {seconds: median(results.map((r) => r.seconds)), rssMiB: Math.max(...results.map((r) => r.rssMiB))};
      } catch (e) {
        log(`${what} failed, column left empty: ${e.message.split('\n')[0]}`);
        return undefined;
      }
    };
    const fPush = await pushRuns('ferry push', (host) => [...FERRY, 'push', large.file, `${host}/bench/large:1`, '--quiet']);
    if (!fPush) throw new Error('ferry push failed');
    const sPush = hasSkopeo ? await pushRuns('skopeo copy → docker://', (host) => ['skopeo', 'copy', '-q', '--preserve-digests', '--dest-tls-verify=false', `docker-archive:${large.file}`, `docker://${host}/bench/large:1`]) : undefined;
    row('push to registry 2.8.2', 'large', large.bytes, fPush, {peerName: 'skopeo copy --preserve-digests', peer: sPush});
    if (sPush) target('large: push ≥ 1.5× faster than skopeo copy', sPush.seconds / fPush.seconds >= 1.5, `×${(sPush.seconds / fPush.seconds).toFixed(2)} (ferry ${fPush.seconds.toFixed(2)} s, skopeo ${sPush.seconds.toFixed(2)} s)`);
    const sPushGz = hasSkopeo ? await pushRuns('skopeo copy (default, gzip) → docker://', (host) => ['skopeo', 'copy', '-q', '--dest-tls-verify=false', `docker-archive:${large.file}`, `docker://${host}/bench/large:1`], SLOW_RUNS) : undefined;
    if (sPushGz) row('push to registry 2.8.2 (skopeo gzips on the way)', 'large', large.bytes, fPush, {peerName: 'skopeo copy (default)', peer: sPushGz});
    const pushed = fresh('large');
    timed([...FERRY, 'push', large.file, pushed, '--quiet'], {env});

    // (2) pull of what ferry pushed: into a docker-archive, nothing beside it from an earlier run.
    const out = path.join(work, 'pulled.tar');
    const clean = () => {
      rmSync(out, {force: true});
      rmSync(path.join(work, '.pulled.tar.ferry-pull'), {recursive: true, force: true});
    };
    const fPull = measure([...FERRY, 'pull', pushed, out, '--quiet'], {env, prepare: clean});
    clean();
    const sOut = path.join(work, 'pulled-skopeo.tar');
    const sPull = hasSkopeo ? tryMeasure('skopeo copy docker:// →', ['skopeo', 'copy', '-q', '--src-tls-verify=false', `docker://${pushed}`, `docker-archive:${sOut}:bench/large:1`], {env, prepare: rm(sOut)}) : undefined;
    rmSync(sOut, {force: true});
    row('pull from registry 2.8.2 → docker-archive', 'large', large.bytes, fPull, {peerName: 'skopeo copy', peer: sPull});
    if (sPull) target('large: pull ≥ 1.5× faster than skopeo copy', sPull.seconds / fPull.seconds >= 1.5, `×${(sPull.seconds / fPull.seconds).toFixed(2)} (ferry ${fPull.seconds.toFixed(2)} s, skopeo ${sPull.seconds.toFixed(2)} s)`);

    // (3) resume: a pull SIGKILLed at half of a big blob, then the same command again.
    const resumeImage = oneLayerImage(path.join(work, 'resume.tar'), 'bench/resume:1', REGISTRY_SIZES.resume, 'random');
    const resumeRef = fresh('resume');
    timed([...FERRY, 'push', resumeImage.file, resumeRef, '--quiet'], {env});
    rmSync(resumeImage.file, {force: true});
    const blob = resumeImage.diffIds[0]; // uncompressed: the blob digest is the diffID
    const resumeOut = path.join(work, 'resume-pulled.tar');
    const blobBytes = REGISTRY_SIZES.resume + 3 * 512 + 1024; // dirs, header, end of archive: close enough for the kill point
    const killedAt = await killPullAt(['pull', resumeRef, resumeOut, '--quiet'], env, partFile(resumeOut, blob), Math.floor(blobBytes / 2));
    if (killedAt === null) log('resume: the pull finished before it could be killed at 50%');
    const rerun = timed([...FERRY, 'pull', resumeRef, resumeOut, '--json'], {env, stdout: true});
    const t = JSON.parse(rerun.stdout).transfer;
    const share = t.fetchedBytes / (t.fetchedBytes + t.reusedBytes);
    rows.push({task: `resume: pull killed at ${killedAt === null ? '?' : ((100 * killedAt) / (t.fetchedBytes + t.reusedBytes)).toFixed(0)}% of the blob, run again`, image: `${REGISTRY_SIZES.resume / MiB} MiB blob`, bytes: t.fetchedBytes, ferry: rerun});
    log(`resume: killed at ${killedAt} bytes; the rerun fetched ${t.fetchedBytes} of ${t.fetchedBytes + t.reusedBytes} bytes (${(100 * share).toFixed(1)}%) in ${rerun.seconds.toFixed(2)} s`);
    target(`resume: the rerun of a pull killed at 50% of a ${REGISTRY_SIZES.resume / MiB} MiB blob transfers ≤ 55% of it`, killedAt !== null && share <= 0.55, `${(100 * share).toFixed(1)}% (${(t.fetchedBytes / MiB).toFixed(1)} MiB fetched, ${(t.reusedBytes / MiB).toFixed(1)} MiB reused)`);
    rmSync(resumeOut, {force: true});

    // (4) 20 images sharing two base layers: pushed once, then again (nothing to upload).
    const fleetDir = path.join(work, 'fleet');
    const base = REGISTRY_SIZES.bases.map((size, i) => ({dirs: ['base'], files: [{name: `base/layer-${i}.txt`, size, kind: 'text'}], whiteouts: []}));
    const fleet = Array.from({length: FLEET}, (_, i) => writeDockerArchive(path.join(fleetDir, `app-${i}.tar`), `bench/app-${i}:1`, [...base, {dirs: ['app'], files: [{name: `app/app-${i}.txt`, size: 100_000 + i, kind: 'text'}], whiteouts: []}]).file);
    const fleetTarget = `${reg.host}/fleet`;
    const first = timed([...FERRY, 'push', ...fleet, fleetTarget, '--all', '--json'], {env, stdout: true});
    const firstT = JSON.parse(first.stdout).transfer;
    rows.push({task: `first push of ${FLEET} images sharing 2 base layers (--all)`, image: 'fleet', bytes: firstT.uploadedBytes, ferry: first});
    log(`fleet: first push ${first.seconds.toFixed(2)} s: ${firstT.uploaded} uploaded, ${firstT.mounted} mounted, ${firstT.skipped} skipped`);
    const again = timed([...FERRY, 'push', ...fleet, fleetTarget, '--all', '--json'], {env, stdout: true});
    const againT = JSON.parse(again.stdout).transfer;
    rows.push({task: `second push of the ${FLEET} images (nothing to upload)`, image: 'fleet', bytes: 0, ferry: again});
    target(`a second push of ${FLEET} images sharing bases: 0 blob uploads, under 2 s`, againT.uploaded === 0 && againT.uploadedBytes === 0 && again.seconds < 2, `${againT.uploaded} uploads (${againT.uploadedBytes} bytes), ${againT.skipped} blobs found by HEAD, ${again.seconds.toFixed(2)} s`);
    rmSync(fleetDir, {recursive: true, force: true});

    // (5) peak RSS pushing and pulling one big layer (zeros: sparse here, real bytes on the wire and in the registry).
    const big = oneLayerImage(path.join(work, 'rss.tar'), 'bench/rss:1', REGISTRY_SIZES.rss, 'zeros');
    const rssRef = fresh('rss');
    const rssPush = timed([...FERRY, 'push', big.file, rssRef, '--quiet'], {env});
    rmSync(big.file, {force: true});
    const rssOut = path.join(work, 'rss-pulled.tar');
    const rssPull = timed([...FERRY, 'pull', rssRef, rssOut, '--quiet'], {env});
    rmSync(rssOut, {force: true});
    const label = `${REGISTRY_SIZES.rss / MiB} MiB layer`;
    rows.push({task: 'peak RSS: push to registry 2.8.2', image: label, bytes: REGISTRY_SIZES.rss, ferry: rssPush});
    rows.push({task: 'peak RSS: pull from registry 2.8.2', image: label, bytes: REGISTRY_SIZES.rss, ferry: rssPull});
    log(`rss: push ${rssPush.seconds.toFixed(2)} s ${rssPush.rssMiB.toFixed(0)} MiB; pull ${rssPull.seconds.toFixed(2)} s ${rssPull.rssMiB.toFixed(0)} MiB`);
    const worst = Math.max(rssPush.rssMiB, rssPull.rssMiB) * 1.048576;
    target(`peak RSS ≤ 200 MB pushing and pulling a ${label}`, worst <= 200, `push ${(rssPush.rssMiB * 1.048576).toFixed(0)} MB, pull ${(rssPull.rssMiB * 1.048576).toFixed(0)} MB`);
  } finally {
    await reg.stop();
    rmSync(path.dirname(reg.storage), {recursive: true, force: true});
    rmSync(home, {recursive: true, force: true});
  }
}

async function main() {
  log(`scale ${SCALE}, ${RUNS} run(s) each (slow peers ${SLOW_RUNS}), rows ${ONLY ?? 'all'}, work dir ${work}`);
  const images = RUN_CORE ? await coreRows() : ONLY === 'daemon' ? await daemonOnly() : ONLY === 'built' ? {built: await builtRows(has('skopeo'))} : undefined;
  if (RUN_BUNDLE) await bundleRows();
  if (RUN_REGISTRY) await registryRows(images);
  writeDoc(images);
}

/** `--only daemon`: the daemon rows alone, on the large image, against a private dockerd. */
async function daemonOnly() {
  const hasDocker = existsSync(DOCKER) && has('dockerd') && process.getuid?.() === 0;
  if (!hasDocker) throw new Error('--only daemon needs dockerd and /usr/bin/docker, run as root');
  const large = writeDockerArchive(path.join(work, 'large.docker.tar'), 'bench/large:1', planImage('large', SIZES.large));
  const d = await startDockerd();
  if (!d) throw new Error('dockerd did not start');
  cleanups.push(d.stop);
  try {
    log(`dockerd up (${d.driver})`);
    daemonRows(d, 'large', large.file, large.bytes, path.join(work, 'out'));
  } finally {
    await d.stop();
    cleanups.pop();
  }
  return {large};
}

/** docker-archive → OCI without and with recompression, against skopeo copy and cp. */
function convertRows(kind, src, bytes, out, cp, hasSkopeo) {
  // docker-archive → oci (keep); skopeo compresses for OCI unless told not to
  const fOci = measure([...FERRY, 'convert', src, `oci:${out}.oci`, '--compress', 'keep', '--quiet'], {prepare: rm(`${out}.oci`)});
  const sOci = hasSkopeo ? tryMeasure('skopeo copy (keep)', ['skopeo', 'copy', '-q', '--dest-oci-accept-uncompressed-layers', `docker-archive:${src}`, `oci:${out}.s-oci:bench`], {prepare: rm(`${out}.s-oci`)}) : undefined;
  rmSync(`${out}.s-oci`, {recursive: true, force: true});
  row('docker-archive → oci (keep)', kind, bytes, fOci, {peerName: 'skopeo copy', peer: sOci, floorName: 'cp', floor: cp});
  // The disk-speed target is the 2 GB image's: on a few hundred MB, cp takes about as long as node starts.
  if (kind === 'large') target(`${kind}: convert keep ≥ 0.8× the speed of cp`, cp.seconds / fOci.seconds >= 0.8, `×${(cp.seconds / fOci.seconds).toFixed(2)} of cp (${fOci.seconds.toFixed(2)} s vs ${cp.seconds.toFixed(2)} s)`);
  const fNone = measure([...FERRY, 'convert', src, `oci-archive:${out}.none.tar`, '--compress', 'none', '--quiet'], {prepare: rm(`${out}.none.tar`)});
  rmSync(`${out}.none.tar`, {force: true});
  row('docker-archive → oci-archive (none)', kind, bytes, fNone, {floorName: 'cp', floor: cp});
  if (kind === 'large') target(`${kind}: convert none ≥ 0.8× the speed of cp`, cp.seconds / fNone.seconds >= 0.8, `×${(cp.seconds / fNone.seconds).toFixed(2)} of cp`);

  // docker-archive → oci-archive (gzip)
  const fGz = measure([...FERRY, 'convert', src, `oci-archive:${out}.gz.tar`, '--compress', 'gzip', '--quiet'], {prepare: rm(`${out}.gz.tar`)});
  const sGz = hasSkopeo ? tryMeasure('skopeo copy (gzip)', ['skopeo', 'copy', '-q', '--dest-compress', '--dest-compress-format', 'gzip', `docker-archive:${src}`, `oci-archive:${out}.s-gz.tar:bench`], {prepare: rm(`${out}.s-gz.tar`)}) : undefined;
  const sGzBytes = sGz ? sizeOf(`${out}.s-gz.tar`) : undefined;
  rmSync(`${out}.s-gz.tar`, {force: true});
  row('docker-archive → oci-archive (gzip)', kind, bytes, fGz, {peerName: 'skopeo copy', peer: sGz});
  if (sGz) target(`${kind}: convert gzip ≥ 1.2× skopeo's speed`, sGz.seconds / fGz.seconds >= 1.2, `×${(sGz.seconds / fGz.seconds).toFixed(2)}`);

  // zstd, against skopeo's gzip throughput on the same archive
  const fZstd = measure([...FERRY, 'convert', src, `oci-archive:${out}.zst.tar`, '--compress', 'zstd', '--quiet'], {prepare: rm(`${out}.zst.tar`)});
  rmSync(`${out}.zst.tar`, {force: true});
  row('docker-archive → oci-archive (zstd)', kind, bytes, fZstd, {peerName: 'skopeo copy (gzip)', peer: sGz});
  if (sGz) target(`${kind}: zstd ≥ 3× skopeo's gzip throughput`, sGz.seconds / fZstd.seconds >= 3, `×${(sGz.seconds / fZstd.seconds).toFixed(2)}`);
  return {sGz, sGzBytes};
}

/** The convert rows on the image of a real `docker build` (built in a private dockerd, then saved). */
async function builtRows(hasSkopeo) {
  const d = await startDockerd();
  if (!d) return undefined;
  cleanups.push(d.stop);
  let built;
  try {
    const t = Date.now();
    built = buildRealImage(d, path.join(work, 'built.docker.tar'));
    log(`built: ${(built.bytes / 1e6).toFixed(0)} MB by docker build + save in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  } finally {
    await d.stop();
    cleanups.pop();
  }
  const out = path.join(work, 'out');
  const cp = measure(['cp', built.file, `${out}.cp`], {prepare: rm(`${out}.cp`)});
  rmSync(`${out}.cp`, {force: true});
  row('floor: cp', 'built', built.bytes, cp);
  const {sGz, sGzBytes} = convertRows('built', built.file, built.bytes, out, cp, hasSkopeo);
  // zlib's level 6 is slower per core than skopeo's deflate at its default: the faster level, for comparison.
  const fGz1 = measure([...FERRY, 'convert', built.file, `oci-archive:${out}.gz1.tar`, '--compress', 'gzip', '--compress-level', '1', '--quiet'], {prepare: rm(`${out}.gz1.tar`)});
  const gz1Bytes = sizeOf(`${out}.gz1.tar`);
  rmSync(`${out}.gz1.tar`, {force: true});
  row('docker-archive → oci-archive (gzip, --compress-level 1)', 'built', built.bytes, fGz1, {peerName: 'skopeo copy', peer: sGz});
  BUILT_NOTE = `Sizes of the built image's gzip oci-archives: ferry --compress-level 1 ${(gz1Bytes / 1e6).toFixed(0)} MB${sGzBytes ? `, skopeo (pgzip, its default level) ${(sGzBytes / 1e6).toFixed(0)} MB` : ''}`;
  for (const f of readdirSync(work)) if (f.startsWith('out')) rmSync(path.join(work, f), {recursive: true, force: true});
  return built;
}

async function coreRows() {
  const images = {};
  for (const [kind, bytes] of Object.entries(SIZES)) {
    const t = Date.now();
    images[kind] = writeDockerArchive(path.join(work, `${kind}.docker.tar`), `bench/${kind}:1`, planImage(kind, bytes));
    log(`generated ${kind}: ${(images[kind].bytes / 1e6).toFixed(0)} MB in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  const hasSkopeo = has('skopeo');
  const hasUmoci = has('umoci');
  const hasDocker = existsSync(DOCKER) && has('dockerd') && process.getuid?.() === 0;
  if (!hasSkopeo) log('skopeo absent: skopeo columns skipped');
  if (!hasUmoci) log('umoci absent: umoci export skipped');
  if (!hasDocker) log('dockerd absent (or not root): docker columns skipped');

  // Start-up: the best of many runs (the floor a script calling ferry in a loop sees), against node's
  // own, the commands taking turns so that they meet the same noise; timed around the spawn to the
  // microsecond (/usr/bin/time reports centiseconds, coarser than the 30 and 50 ms targets); peak RSS
  // from one run under /usr/bin/time.
  const quickest = (commands) => {
    const best = commands.map(() => Infinity);
    for (let i = 0; i < Math.max(RUNS * 8, 25); i++) {
      commands.forEach((argv, k) => {
        const started = process.hrtime.bigint();
        const r = spawnSync(argv[0], argv.slice(1), {stdio: 'ignore'});
        if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status})`);
        best[k] = Math.min(best[k], Number(process.hrtime.bigint() - started) / 1e9);
      });
    }
    return commands.map((argv, k) => ({seconds: best[k], rssMiB: timed(argv).rssMiB}));
  };
  const [node, version, startup, inspectJson] = quickest([[process.execPath, '-e', '0'], [...FERRY, '--version'], [...FERRY, '--help'], [...FERRY, 'inspect', '--json', images.large.file]]);
  row('start-up: ferry --version', '-', 0, version, {peerName: 'node -e 0', peer: node});
  row('start-up: ferry --help', '-', 0, startup, {peerName: 'node -e 0', peer: node});
  row('start-up: ferry inspect --json (large)', '-', 0, inspectJson, {peerName: 'node -e 0', peer: node});
  const over = (r) => Math.round((r.seconds - node.seconds) * 1000);
  target('ferry --version ≤ node + 30 ms', over(version) <= 30, `node + ${over(version)} ms (${version.seconds.toFixed(3)} s vs ${node.seconds.toFixed(3)} s)`);
  target('ferry inspect --json of the large archive ≤ node + 50 ms', over(inspectJson) <= 50, `node + ${over(inspectJson)} ms (${inspectJson.seconds.toFixed(3)} s vs ${node.seconds.toFixed(3)} s)`);

  // --quick: the medium image only, no umoci or docker rows, no memory rows.
  for (const kind of QUICK ? ['medium'] : ['medium', 'large']) {
    const src = images[kind].file;
    const bytes = images[kind].bytes;
    const out = path.join(work, 'out');
    // floor
    const cp = measure(['cp', src, `${out}.cp`], {prepare: rm(`${out}.cp`)});
    rmSync(`${out}.cp`, {force: true});
    const sha = measure(['sha256sum', src]);
    row('floor: cp', kind, bytes, cp);
    row('floor: sha256sum', kind, bytes, sha);

    convertRows(kind, src, bytes, out, cp, hasSkopeo);

    // oci-archive → docker-archive (from ferry's gzip output: the same file for both)
    const gzBytes = sizeOf(`${out}.gz.tar`);
    const fBack = measure([...FERRY, 'convert', `${out}.gz.tar`, `docker-archive:${out}.back.tar`, '--quiet'], {prepare: rm(`${out}.back.tar`)});
    rmSync(`${out}.back.tar`, {force: true});
    const sBack = hasSkopeo ? tryMeasure('skopeo copy (oci-archive → docker-archive)', ['skopeo', 'copy', '-q', `oci-archive:${out}.gz.tar`, `docker-archive:${out}.s-back.tar:bench/x:1`], {prepare: rm(`${out}.s-back.tar`)}) : undefined;
    rmSync(`${out}.s-back.tar`, {force: true});
    row('oci-archive (gzip) → docker-archive', kind, gzBytes, fBack, {peerName: 'skopeo copy', peer: sBack});
    rmSync(`${out}.gz.tar`, {force: true});

    // export
    const fExp = measure([...FERRY, 'export', src, `${out}.rootfs.tar`, '--quiet'], {prepare: rm(`${out}.rootfs.tar`)});
    rmSync(`${out}.rootfs.tar`, {force: true});
    let uExp;
    if (hasUmoci && !QUICK) {
      // ferry's OCI layout names the image by its full name (README "Names in archives")
      uExp = tryMeasure('umoci unpack + tar -c', `umoci unpack --rootless --image ${out}.oci:docker.io/bench/${kind}:1 ${out}.bundle >/dev/null && tar -C ${out}.bundle/rootfs -cf ${out}.u.tar .`, {shell: true, runs: SLOW_RUNS, prepare: () => (rm(`${out}.bundle`)(), rm(`${out}.u.tar`)())});
      rm(`${out}.bundle`)();
      rm(`${out}.u.tar`)();
    }
    row('export (flatten)', kind, bytes, fExp, {peerName: 'umoci unpack + tar -c', peer: uExp});

    // squash
    const fSq = measure([...FERRY, 'squash', src, `docker-archive:${out}.sq.tar`, '--quiet'], {prepare: rm(`${out}.sq.tar`)});
    rmSync(`${out}.sq.tar`, {force: true});
    row('squash (all layers)', kind, bytes, fSq);

    // inspect / verify
    const fIns = measure([...FERRY, 'inspect', src], {runs: Math.max(RUNS, 5)});
    const sIns = hasSkopeo ? tryMeasure('skopeo inspect', ['skopeo', 'inspect', `docker-archive:${src}`], {runs: Math.max(RUNS, 5)}) : undefined;
    row('inspect', kind, bytes, fIns, {peerName: 'skopeo inspect', peer: sIns});
    if (kind === 'large') target('inspect of the large archive under 0.3 s wall (process start included)', fIns.seconds < 0.3, `${fIns.seconds.toFixed(3)} s; node alone starts in ${node.seconds.toFixed(3)} s`);
    // analyze reads what inspect reads plus every layer's tar headers (and content only where headers cannot tell): inspect is its floor.
    const fAn = measure([...FERRY, 'analyze', src, '--quiet'], {runs: Math.max(RUNS, 5)});
    row('analyze (vs inspect of the same archive)', kind, bytes, fAn, {peerName: 'ferry inspect', peer: fIns});
    if (kind === 'large') target('analyze of the large archive under 1 s wall (headers only)', fAn.seconds < 1, `${fAn.seconds.toFixed(3)} s; inspect ${fIns.seconds.toFixed(3)} s`);
    const fVer = measure([...FERRY, 'verify', src]);
    row('verify', kind, bytes, fVer, {peerName: 'sha256sum of the archive', peer: sha});

    if (hasDocker && kind === 'large' && !QUICK) {
      const d = await startDockerd();
      if (d) {
        cleanups.push(d.stop);
        try {
          log(`dockerd up (${d.driver}); loading the ${kind} image`);
          timed([DOCKER, 'load', '-i', src], {env: d.env});
          const dExp = tryMeasure('docker create + export', `cid=$(${DOCKER} create bench/${kind}:1 /bin/sh) && ${DOCKER} export -o ${out}.d.tar $cid && ${DOCKER} rm $cid >/dev/null`, {shell: true, env: d.env, prepare: rm(`${out}.d.tar`)});
          rmSync(`${out}.d.tar`, {force: true});
          if (dExp) {
            row(`export vs docker create + export (${d.driver})`, kind, bytes, fExp, {peerName: 'docker export', peer: dExp});
            target(`${kind}: export no slower than docker export`, fExp.seconds <= dExp.seconds, `ferry ${fExp.seconds.toFixed(1)} s vs docker ${dExp.seconds.toFixed(1)} s`);
          }
          const dSq = tryMeasure('docker export | docker import', `cid=$(${DOCKER} create bench/${kind}:1 /bin/sh) && ${DOCKER} export $cid | ${DOCKER} import - bench/sq:1 >/dev/null && ${DOCKER} rm $cid >/dev/null && ${DOCKER} rmi bench/sq:1 >/dev/null`, {shell: true, env: d.env, runs: SLOW_RUNS});
          if (dSq) {
            row(`squash vs docker export | docker import (${d.driver})`, kind, bytes, fSq, {peerName: 'docker export|import', peer: dSq});
            target(`${kind}: squash no slower than docker export | import`, fSq.seconds <= dSq.seconds, `ferry ${fSq.seconds.toFixed(1)} s vs docker ${dSq.seconds.toFixed(1)} s`);
          }
          if (RUN_DAEMON) {
            // The daemon rows start from an image the daemon does not hold.
            spawnSync(DOCKER, ['rmi', '-f', `bench/${kind}:1`], {env: {...process.env, ...d.env}, stdio: 'ignore'});
            daemonRows(d, kind, src, bytes, out);
          }
        } finally {
          await d.stop();
          cleanups.pop();
        }
      }
    }
    for (const f of readdirSync(work)) if (f.startsWith('out')) rmSync(path.join(work, f), {recursive: true, force: true});
  }

  if (QUICK) return images;
  if (hasDocker) images.built = await builtRows(hasSkopeo);
  // Flat memory: every command on the large and the huge (sparse zeros) image.
  let worst = {rssMiB: 0, what: ''};
  for (const kind of ['large', 'huge']) {
    const src = images[kind].file;
    const out = path.join(work, 'mem');
    const cmds = [
      ['inspect', [src]],
      ['verify', [src]],
      ['convert keep', [src, `oci-archive:${out}.tar`, '--quiet', '--force']],
      ['convert gzip', [src, `oci-archive:${out}.tar`, '--compress', 'gzip', '--quiet', '--force']],
      ['convert zstd', [src, `oci-archive:${out}.tar`, '--compress', 'zstd', '--quiet', '--force']],
      ['export', [src, `${out}.tar`, '--quiet', '--force']],
      ['squash', [src, `docker-archive:${out}.tar`, '--quiet', '--force']],
    ];
    for (const [name, args] of cmds) {
      const command = name.split(' ')[0];
      const r = timed([...FERRY, command, ...args]);
      rmSync(`${out}.tar`, {force: true});
      if (r.rssMiB > worst.rssMiB) worst = {rssMiB: r.rssMiB, what: `${name} on ${kind}`};
      rows.push({task: `peak RSS: ${name}`, image: kind, bytes: images[kind].bytes, ferry: r});
      log(`${kind} ${name}: ${r.seconds.toFixed(2)} s, peak RSS ${r.rssMiB.toFixed(0)} MiB`);
    }
  }
  target('peak RSS under 200 MB for every command (large and huge images)', worst.rssMiB * 1.048576 < 200, `worst ${(worst.rssMiB * 1.048576).toFixed(0)} MB (${worst.what})`);
  return images;
}

function writeDoc(images) {
  const fmt = (r) => (r ? `${r.seconds.toFixed(2)} s` : '—');
  const cell = (text) => String(text).replace(/\|/g, '\\|'); // a | inside a cell would end it
  const times = (x) => (x === undefined ? '' : `×${x.toFixed(2)}`);
  // Throughput means something for tasks that read the bytes (not start-up or inspect).
  const mbps = (r) => (r.bytes > 0 && !/inspect|start-up/.test(r.task) ? (r.bytes / 1e6 / r.ferry.seconds).toFixed(0) : '');
  const minutes = ((Date.now() - STARTED) / 60000).toFixed(1);
  const lines = [
    `# ferry benchmarks${SMALL ? ' (smoke scale)' : ''}`,
    '',
    `Written by \`npm run bench\` (scripts/bench.js) on ${new Date().toISOString().slice(0, 10)} in ${minutes} min. Medians of ${RUNS} run(s) (umoci and docker export | import: ${SLOW_RUNS}); warm page cache; peak RSS from \`/usr/bin/time -v\` (the worst run).`,
    '',
    '## Machine',
    '',
    machine(),
    `- load average (1 min) at the start and the end of the run: ${LOAD_AT_START} and ${os.loadavg()[0].toFixed(2)} (other work on the same cores slows every figure alike; \`node -e 0\` in the first row shows how much)`,
    '',
    ...(images
      ? [
          `Images (generated by scripts/bench-images.js in a temp dir, never committed): ${[
            images.medium && `medium ${(images.medium.bytes / 1e6).toFixed(0)} MB / 8 layers (many small text files, big random files, overwrites and deletions)`,
            images.large && `large ${(images.large.bytes / 1e6).toFixed(0)} MB / 5 layers (4 of random data, 1 highly compressible)`,
            images.built && `built ${(images.built.bytes / 1e6).toFixed(0)} MB / 9 layers, written by a real \`docker build\` (FROM scratch: busybox, C headers, Python and Perl libraries, vim's runtime, container tools' binaries, 32 MiB of random data, a layer of deletions) and \`docker save\``,
            images.huge && `huge ${(images.huge.bytes / 1e9).toFixed(1)} GB / 1 layer of zeros (sparse on disk), for the memory check`,
          ]
            .filter(Boolean)
            .join('; ')}. All are legacy docker-archives with uncompressed layers, as \`docker save\` 20.10 writes them.`,
          '',
        ]
      : []),
    ...(BUNDLE_IMAGES_NOTE ? [BUNDLE_IMAGES_NOTE, ''] : []),
    ...(REGISTRY_IMAGES_NOTE ? [REGISTRY_IMAGES_NOTE, ''] : []),
    ...(BUILT_NOTE ? [BUILT_NOTE, ''] : []),
    '## Results',
    '',
    '"speed-up" is the other tool\'s time divided by ferry\'s (above 1: ferry is faster); "of floor" is ferry\'s speed as a fraction of the floor\'s (cp or sha256sum of the same bytes).',
    '',
    '| image | task | ferry | MB/s | peak RSS | peer | peer time | speed-up | of floor |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.image} | ${cell(r.task)} | ${fmt(r.ferry)} | ${mbps(r)} | ${r.ferry.rssMiB.toFixed(0)} MiB | ${cell(r.peerName ?? '')} | ${r.peerName ? fmt(r.peer) : ''} | ${times(ratio(r.peer, r.ferry))} | ${r.floorName ? `${times(ratio(r.floor, r.ferry))} ${cell(r.floorName)}` : ''} |`),
    '',
    '## Targets',
    '',
    '| target | holds | measured |',
    '|---|---|---|',
    ...targets.map((t) => `| ${cell(t.name)} | ${t.holds ? 'yes' : '**no**'} | ${cell(t.detail)} |`),
    '',
    ...notes(),
  ];
  mkdirSync(path.dirname(OUT_DOC), {recursive: true});
  writeFileSync(OUT_DOC, lines.join('\n'));
  log(`wrote ${OUT_DOC} (${minutes} min)`);
}

/** What the profiles showed and why some targets cannot hold here (hand-written; kept with the script that writes the numbers). */
function notes() {
  const file = path.join(ROOT, 'scripts', 'bench-notes.md');
  return existsSync(file) ? ['## Notes', '', readFileSync(file, 'utf8').trim(), ''] : [];
}

/** A document's rows: `image|task|peer` → the ratio to the peer and to the floor. */
function ratiosOf(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    if (cells.length < 10 || cells[1] === 'image' || cells[1].startsWith('---')) continue;
    const [, image, task, , , , peer, , speedUp, floor] = cells;
    const num = (t) => (/^×[\d.]+/.test(t) ? Number(/^×([\d.]+)/.exec(t)[1]) : undefined);
    out.set(`${image}|${task}|${peer}`, {peer: num(speedUp), floor: num(floor)});
  }
  return out;
}

/** --check: every ratio more than 25% worse than the committed document's is a regression. */
function check() {
  if (!existsSync(DOC)) {
    log(`--check: ${path.relative(ROOT, DOC)} is not committed: nothing to compare with`);
    return 1;
  }
  const before = ratiosOf(readFileSync(DOC, 'utf8'));
  const now = ratiosOf(readFileSync(OUT_DOC, 'utf8'));
  const worse = [];
  let compared = 0;
  for (const [key, r] of now) {
    const b = before.get(key);
    if (!b) continue;
    for (const side of ['peer', 'floor']) {
      if (r[side] === undefined || b[side] === undefined) continue;
      compared++;
      if (r[side] < b[side] * 0.75) worse.push(`${key.replace(/\|/g, ' / ')}: ×${r[side].toFixed(2)} of its ${side}, was ×${b[side].toFixed(2)}`);
    }
  }
  log(`--check: ${compared} ratios compared with ${path.relative(ROOT, DOC)}; ${worse.length} more than 25% worse`);
  for (const w of worse) log(`  worse: ${w}`);
  // The new figures: on stdout, and kept where BENCH_OUT named (the temp file otherwise goes).
  process.stdout.write(readFileSync(OUT_DOC, 'utf8'));
  if (!process.env.BENCH_OUT) rmSync(OUT_DOC, {force: true});
  return worse.length > 0 || compared === 0 ? 1 : 0;
}

try {
  await main();
} finally {
  await cleanup();
}
if (CHECK) process.exitCode = check();
