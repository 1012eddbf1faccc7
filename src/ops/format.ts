/** Where a write went, as the user would name it again: `oci-archive:x.tar`, `docker://host/repo:tag@sha256:…`. */
export function describeDestination(summary: {format: string; path: string; digest?: string}): string {
  if (summary.format === 'docker') return `docker://${summary.path}${summary.digest ? ` (${summary.digest})` : ''}`;
  if (summary.format === 'docker-daemon' && summary.path === '') return 'the daemon';
  return `${summary.format}:${summary.path}`;
}

/** `1.5 MiB`: sizes for people (results and notes); JSON keeps bytes. */
export function humanSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

const BYTE_UNITS: Record<string, number> = {
  b: 1,
  '': 1,
  kib: 2 ** 10,
  kb: 1e3,
  ki: 2 ** 10,
  k: 1e3,
  mib: 2 ** 20,
  mb: 1e6,
  mi: 2 ** 20,
  m: 1e6,
  gib: 2 ** 30,
  gb: 1e9,
  gi: 2 ** 30,
  g: 1e9,
  tib: 2 ** 40,
  tb: 1e12,
  ti: 2 ** 40,
  t: 1e12,
  pib: 2 ** 50,
  pb: 1e15,
  pi: 2 ** 50,
  p: 1e15,
  eib: 2 ** 60,
  eb: 1e18,
  ei: 2 ** 60,
  e: 1e18,
};

/**
 * A size as go-humanize's ParseBytes reads it (what dive uses): digits, '.' and ',' (thousands
 * separators, dropped), then an optional unit, case-insensitive, after optional spaces: "20MB" is
 * 20,000,000, "20MiB" 20,971,520, "19Mb" 19,000,000. Undefined when it is not one.
 */
export function parseByteSize(text: string): number | undefined {
  const m = /^([\d.,]*)(.*)$/s.exec(text)!;
  const num = m[1]!.replace(/,/g, '');
  if (!/^(\d+\.?\d*|\.\d+)$/.test(num)) return undefined;
  const unit = BYTE_UNITS[m[2]!.trim().toLowerCase()];
  if (unit === undefined) return undefined;
  const value = Number(num) * unit;
  return Number.isFinite(value) ? Math.floor(value) : undefined;
}
