/**
 * What a daemon told ferry about itself, and API version comparisons — apart from the client
 * (client.ts) so that choosing a layout or compression does not load node's http and https.
 */

export interface DaemonInfo {
  /** The negotiated API version, e.g. "1.41". */
  apiVersion: string;
  /** The daemon's own version (Docker 20.10.24, or podman's). */
  version: string;
  /** Which engine answers: dockerd or the podman service. */
  engine: 'docker' | 'podman';
}

export function compareVersions(a: string, b: string): number {
  const [a1 = 0, a2 = 0] = a.split('.').map(Number);
  const [b1 = 0, b2 = 0] = b.split('.').map(Number);
  return a1 - b1 || a2 - b2;
}

export function apiAtLeast(info: DaemonInfo, version: string): boolean {
  return compareVersions(info.apiVersion, version) >= 0;
}
