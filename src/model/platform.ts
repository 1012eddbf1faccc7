import {UsageError} from '../errors.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export function formatPlatform(p: Platform | undefined): string {
  if (!p) return 'unknown';
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new UsageError(`invalid platform "${text}": expected os/arch[/variant]`);
  }
  const [os, architecture, variant] = parts as [string, string, string?];
  return variant ? {os, architecture, variant} : {os, architecture};
}

/** Node's arch names to OCI's (GOARCH). */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = {x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64'};
  const architecture = arch[process.arch] ?? process.arch;
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  return architecture === 'arm' ? {os, architecture, variant: 'v7'} : architecture === 'arm64' ? {os, architecture, variant: 'v8'} : {os, architecture};
}

/** Matches `want` against `have`; a missing variant on either side matches (arm64 ≡ arm64/v8). */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  if (!want.variant || !have.variant) return true;
  return want.variant === have.variant;
}
