#!/usr/bin/env node
// `npm run bench`: ferry against the peers present on this machine, on the same archives, in the same run.
// Figures are medians of several runs (wall seconds and peak RSS from /usr/bin/time -v); results go to
// docs/benchmarks.md with the machine's description. BENCH_SCALE=small runs a reduced smoke version (CI).
import {spawn, spawnSync} from 'node:child_process';
import {existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {planImage, writeDockerArchive} from './bench-images.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FERRY = [process.execPath, path.join(ROOT, 'bin/run.js')];
const SCALE = process.env.BENCH_SCALE ?? (process.argv.includes('--small') ? 'small' : 'full');
const SMALL = SCALE === 'small';
const RUNS = Number(process.env.BENCH_RUNS ?? (SMALL ? 1 : 3));
const SIZES = SMALL ? {medium: 24e6, large: 60e6, huge: 200e6} : {medium: 300e6, large: 2e9, huge: 8e9};
const OUT_DOC = process.env.BENCH_OUT ?? path.join(ROOT, 'docs', SMALL ? 'benchmarks-smoke.md' : 'benchmarks.md');
const DOCKER = '/usr/bin/docker';

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
function timed(argv, {env, shell} = {}) {
  const timeFile = path.join(work, 'time.txt');
  const cmd = shell ? ['sh', '-c', argv] : argv;
  const r = spawnSync('/usr/bin/time', ['-v', '-o', timeFile, ...cmd], {env: {...process.env, ...env}, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26});
  if (r.status !== 0) throw new Error(`${shell ? argv : argv.join(' ')} failed (${r.status}): ${r.stderr.toString().slice(-600)}`);
  const text = readFileSync(timeFile, 'utf8');
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(text);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(text);
  const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
  return {seconds, rssMiB: Number(rss[1]) / 1024};
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};

/** Median of RUNS runs; `prepare` runs before each (e.g. removing the previous output), untimed. */
function measure(argv, {prepare, runs = RUNS, env, shell} = {}) {
  const results = [];
  for (let i = 0; i < runs; i++) {
    prepare?.();
    results.push(timed(argv, {env, shell}));
  }
  return {seconds: median(results.map((r) => r.seconds)), rssMiB: Math.max(...results.map((r) => r.rssMiB))};
}

const rm = (p) => () => rmSync(p, {recursive: true, force: true});
const sizeOf = (p) => {
  const st = statSync(p);
  if (!st.isDirectory()) return st.blocks * 512 < st.size ? st.blocks * 512 : st.size;
  return readdirSync(p, {recursive: true}).reduce((n, f) => {
    const s = statSync(path.join(p, f));
    return n + (s.isFile() ? s.size : 0);
  }, 0);
};

async function startDockerd() {
  const root = mkdtempSync('/tmp/fbd-');
  const host = `unix://${root}/docker.sock`;
  const child = spawn('dockerd', ['--storage-driver', 'vfs', '--iptables=false', '--ip6tables=false', '--bridge=none', '--ip-forward=false', '--ip-masq=false', '-H', host, '--data-root', `${root}/data`, '--exec-root', `${root}/exec`, '--pidfile', `${root}/pid`], {stdio: 'ignore'});
  const env = {DOCKER_HOST: host, DOCKER_CONFIG: `${root}/client`};
  for (let i = 0; i < 240; i++) {
    if (spawnSync(DOCKER, ['version'], {env: {...process.env, ...env}, stdio: 'ignore'}).status === 0) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const stop = async () => {
    if (child.exitCode === null) {
      const done = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      await done;
    }
    rmSync(root, {recursive: true, force: true});
  };
  return {env, stop};
}

function machine() {
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  const df = spawnSync('df', ['-h', '--output=source,fstype,size,avail', work], {encoding: 'utf8'}).stdout.trim().split('\n').pop();
  const version = (tool, args) => (has(tool) ? spawnSync(tool, args, {encoding: 'utf8'}).stdout.split('\n')[0].trim() : 'absent');
  return [
    `- cores: ${os.availableParallelism()} × ${cpu}; memory ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    `- node ${process.version}; ${os.type()} ${os.release()}`,
    `- disk (temp dir): ${df}`,
    `- peers: skopeo ${version('skopeo', ['--version'])}; docker ${existsSync(DOCKER) ? version(DOCKER, ['--version']) : 'absent'}; umoci ${version('umoci', ['--version'])}`,
  ].join('\n');
}

const rows = [];
const targets = [];
function row(task, image, bytes, ferryResult, peerName, peerResult, floorName, floorResult) {
  const mbps = (r) => (r && bytes > 0 ? (bytes / 1e6 / r.seconds).toFixed(0) : '');
  rows.push({task, image, ferry: ferryResult, peerName, peer: peerResult, floorName, floor: floorResult, mbps: mbps(ferryResult)});
  const ratio = peerResult ? (peerResult.seconds / ferryResult.seconds).toFixed(2) : 'n/a';
  log(`${image} ${task}: ferry ${ferryResult.seconds.toFixed(2)} s (${ferryResult.rssMiB.toFixed(0)} MiB)${peerResult ? `, ${peerName} ${peerResult.seconds.toFixed(2)} s → ×${ratio}` : ''}`);
}
function target(name, holds, detail) {
  targets.push({name, holds, detail});
  log(`target ${holds ? 'HOLDS' : 'MISSED'}: ${name} (${detail})`);
}

async function main() {
  log(`scale ${SCALE}, ${RUNS} run(s) each, work dir ${work}`);
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

  const startup = measure([...FERRY, '--help'], {runs: Math.max(RUNS, 3)});
  row('start-up: ferry --help', '-', 0, startup);
  target('ferry --help starts well under a second', startup.seconds < 0.5, `${startup.seconds.toFixed(3)} s`);

  for (const kind of ['medium', 'large']) {
    const src = images[kind].file;
    const bytes = images[kind].bytes;
    const out = path.join(work, 'out');
    // floor
    const cp = measure(['cp', src, `${out}.cp`], {prepare: rm(`${out}.cp`)});
    rmSync(`${out}.cp`, {force: true});
    const sha = measure(['sha256sum', src]);
    row('floor: cp', kind, bytes, cp);
    row('floor: sha256sum', kind, bytes, sha);

    // docker-archive → oci (keep)
    const fOci = measure([...FERRY, 'convert', src, `oci:${out}.oci`, '--compress', 'keep', '--quiet'], {prepare: rm(`${out}.oci`)});
    const sOci = hasSkopeo ? measure(['skopeo', 'copy', '-q', `docker-archive:${src}`, `oci:${out}.s-oci:bench`], {prepare: rm(`${out}.s-oci`)}) : undefined;
    row('docker-archive → oci (keep)', kind, bytes, fOci, 'skopeo copy', sOci, 'cp', cp);
    target(`${kind}: convert keep ≥ 0.8× cp`, cp.seconds / fOci.seconds >= 0.8, `×${(cp.seconds / fOci.seconds).toFixed(2)} of cp`);

    // docker-archive → oci-archive (gzip)
    const fGz = measure([...FERRY, 'convert', src, `oci-archive:${out}.gz.tar`, '--compress', 'gzip', '--quiet'], {prepare: rm(`${out}.gz.tar`)});
    const sGz = hasSkopeo ? measure(['skopeo', 'copy', '-q', '--dest-compress', '--dest-compress-format', 'gzip', `docker-archive:${src}`, `oci-archive:${out}.s-gz.tar:bench`], {prepare: rm(`${out}.s-gz.tar`)}) : undefined;
    row('docker-archive → oci-archive (gzip)', kind, bytes, fGz, 'skopeo copy', sGz);
    if (sGz) target(`${kind}: convert gzip faster than skopeo (aim 1.5×)`, sGz.seconds / fGz.seconds > 1, `×${(sGz.seconds / fGz.seconds).toFixed(2)}`);

    // zstd
    const fZstd = measure([...FERRY, 'convert', src, `oci-archive:${out}.zst.tar`, '--compress', 'zstd', '--quiet'], {prepare: rm(`${out}.zst.tar`)});
    row('docker-archive → oci-archive (zstd)', kind, bytes, fZstd, 'skopeo gzip', sGz);
    if (sGz) target(`${kind}: zstd ≥ 3× skopeo's gzip throughput`, sGz.seconds / fZstd.seconds >= 3, `×${(sGz.seconds / fZstd.seconds).toFixed(2)}`);

    // oci-archive → docker-archive
    const fBack = measure([...FERRY, 'convert', `${out}.gz.tar`, `docker-archive:${out}.back.tar`, '--quiet'], {prepare: rm(`${out}.back.tar`)});
    const sBack = hasSkopeo ? measure(['skopeo', 'copy', '-q', `oci-archive:${out}.gz.tar`, `docker-archive:${out}.s-back.tar:bench/x:1`], {prepare: rm(`${out}.s-back.tar`)}) : undefined;
    row('oci-archive (gzip) → docker-archive', kind, sizeOf(`${out}.gz.tar`), fBack, 'skopeo copy', sBack);

    // export
    const fExp = measure([...FERRY, 'export', src, `${out}.rootfs.tar`, '--quiet'], {prepare: rm(`${out}.rootfs.tar`)});
    let uExp;
    if (hasUmoci) {
      uExp = measure(`umoci unpack --rootless --image ${out}.oci:bench/${kind}:1 ${out}.bundle >/dev/null 2>&1 || umoci unpack --rootless --image ${out}.oci ${out}.bundle >/dev/null && tar -C ${out}.bundle/rootfs -cf ${out}.u.tar .`, {shell: true, prepare: () => (rm(`${out}.bundle`)(), rm(`${out}.u.tar`)())});
      rm(`${out}.bundle`)();
    }
    row('export (flatten)', kind, bytes, fExp, 'umoci unpack + tar -c', uExp);

    // squash
    const fSq = measure([...FERRY, 'squash', src, `docker-archive:${out}.sq.tar`, '--quiet'], {prepare: rm(`${out}.sq.tar`)});
    row('squash (all layers)', kind, bytes, fSq);

    // inspect / verify
    const fIns = measure([...FERRY, 'inspect', src], {runs: Math.max(RUNS, 3)});
    const sIns = hasSkopeo ? measure(['skopeo', 'inspect', `docker-archive:${src}`], {runs: Math.max(RUNS, 3)}) : undefined;
    row('inspect', kind, bytes, fIns, 'skopeo inspect', sIns);
    if (kind === 'large') target('inspect of the large archive under 0.3 s wall', fIns.seconds < 0.3, `${fIns.seconds.toFixed(3)} s`);
    const fVer = measure([...FERRY, 'verify', src]);
    row('verify', kind, bytes, fVer, 'sha256sum (floor)', sha);

    if (hasDocker && kind === 'large') {
      const d = await startDockerd();
      cleanups.push(d.stop);
      try {
        timed([DOCKER, 'load', '-i', src], {env: d.env});
        const dExp = measure(`cid=$(${DOCKER} create bench/${kind}:1 /bin/sh) && ${DOCKER} export -o ${out}.d.tar $cid && ${DOCKER} rm $cid >/dev/null`, {shell: true, env: d.env, prepare: rm(`${out}.d.tar`)});
        row('export via docker create + export', kind, bytes, fExp, 'docker export', dExp);
        target(`${kind}: export no slower than docker export`, fExp.seconds <= dExp.seconds, `ferry ${fExp.seconds.toFixed(1)} s vs docker ${dExp.seconds.toFixed(1)} s`);
        const dSq = measure(`cid=$(${DOCKER} create bench/${kind}:1 /bin/sh) && ${DOCKER} export $cid | ${DOCKER} import - bench/sq:1 >/dev/null && ${DOCKER} rm $cid >/dev/null`, {shell: true, env: d.env, runs: 1});
        row('squash via docker export | docker import', kind, bytes, fSq, 'docker export|import', dSq);
        target(`${kind}: squash no slower than docker export+import`, fSq.seconds <= dSq.seconds, `ferry ${fSq.seconds.toFixed(1)} s vs docker ${dSq.seconds.toFixed(1)} s`);
      } finally {
        await d.stop();
        cleanups.pop();
      }
    }
    for (const f of readdirSync(work)) if (f.startsWith('out')) rmSync(path.join(work, f), {recursive: true, force: true});
  }

  // Flat memory: every command on the large and the huge (sparse zeros) image.
  let worst = 0;
  for (const kind of ['large', 'huge']) {
    const src = images[kind].file;
    const out = path.join(work, 'mem');
    const cmds = [
      ['inspect', [src]],
      ['verify', [src]],
      ['convert keep', [src, `oci-archive:${out}.tar`, '--quiet', '--force']],
      ['convert gzip', [src, `oci-archive:${out}.tar`, '--compress', 'gzip', '--quiet', '--force']],
      ['export', [src, `${out}.tar`, '--quiet', '--force']],
      ['squash', [src, `docker-archive:${out}.tar`, '--quiet', '--force']],
    ];
    for (const [name, args] of cmds) {
      const command = name.split(' ')[0];
      const r = timed([...FERRY, command, ...args]);
      rmSync(`${out}.tar`, {force: true});
      worst = Math.max(worst, r.rssMiB);
      rows.push({task: `peak RSS: ${name}`, image: kind, ferry: r, mbps: (images[kind].bytes / 1e6 / r.seconds).toFixed(0)});
      log(`${kind} ${name}: ${r.seconds.toFixed(2)} s, peak RSS ${r.rssMiB.toFixed(0)} MiB`);
    }
  }
  target('peak RSS under 200 MB for every command (large and huge images)', worst * 1.048576 < 200, `worst ${worst.toFixed(0)} MiB`);

  const fmt = (r) => (r ? `${r.seconds.toFixed(2)} s` : '—');
  const lines = [
    `# ferry benchmarks${SMALL ? ' (smoke scale)' : ''}`,
    '',
    `Written by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}. Medians of ${RUNS} run(s); warm page cache; peak RSS from \`/usr/bin/time -v\`.`,
    '',
    '## Machine',
    '',
    machine(),
    '',
    `Images (generated by scripts/bench-images.js, never committed): medium ${(images.medium.bytes / 1e6).toFixed(0)} MB / 8 layers (many small text files, big random files, overwrites and deletions); large ${(images.large.bytes / 1e6).toFixed(0)} MB / 5 layers (4 of random data, 1 highly compressible); huge ${(images.huge.bytes / 1e9).toFixed(1)} GB / 1 layer of zeros (sparse on disk), for the memory check.`,
    '',
    '## Results',
    '',
    '| image | task | ferry | ferry MB/s | ferry peak RSS | peer | peer time | peer ÷ ferry (speed-up) |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.image} | ${r.task} | ${fmt(r.ferry)} | ${r.mbps ?? ''} | ${r.ferry.rssMiB.toFixed(0)} MiB | ${r.peerName ?? ''} | ${fmt(r.peer)} | ${r.peer ? `×${(r.peer.seconds / r.ferry.seconds).toFixed(2)}` : ''} |`),
    '',
    '## Targets',
    '',
    '| target | holds | measured |',
    '|---|---|---|',
    ...targets.map((t) => `| ${t.name} | ${t.holds ? 'yes' : '**no**'} | ${t.detail} |`),
    '',
  ];
  mkdirSync(path.dirname(OUT_DOC), {recursive: true});
  writeFileSync(OUT_DOC, lines.join('\n'));
  log(`wrote ${OUT_DOC}`);
}

try {
  await main();
} finally {
  await cleanup();
}
