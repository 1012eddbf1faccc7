import {printable} from '../errors.js';
import {layerHistory} from '../model/config.js';
import {listAbsent, listArtifacts, type Archive} from '../model/image.js';
import {formatPlatform, type Platform} from '../model/platform.js';
import {humanSize} from './format.js';
import {selectImages} from './select.js';

export interface InspectLayer {
  digest: string;
  diffId: string;
  size: number;
  mediaType: string;
  /** The history line that made this layer (created_by, else comment). */
  createdBy: string | null;
}

export interface InspectImage {
  names: string[];
  configDigest: string;
  manifestDigest: string | null;
  platform: Platform;
  created: string | null;
  layers: InspectLayer[];
  config: unknown;
}

/** Content beside the images: attestations, signatures, charts, referrers (kept byte for byte, never run). */
export interface InspectArtifact {
  digest: string;
  mediaType: string;
  /** attestation, signature or artifact. */
  kind: string;
  artifactType: string;
  /** The manifest it refers to, when it says. */
  subject: string | null;
  /** The annotations of the descriptor that lists it (ref names, vnd.docker.reference.*). */
  annotations: Record<string, string>;
  /** Bytes of the manifest and every blob it lists. */
  size: number;
  names: string[];
  platform: Platform | null;
}

export interface InspectResult {
  format: string;
  images: InspectImage[];
  artifacts: InspectArtifact[];
  /** Platforms an index lists whose blobs the archive lacks. */
  absent: Array<{names: string[]; digest: string; platform: Platform | null; reason: string}>;
  warnings: string[];
}

/** Metadata only: reads JSON members and headers, never layer bytes. */
export async function inspectArchive(archive: Archive, refs: readonly string[] = []): Promise<InspectResult> {
  const images = (await selectImages(archive, refs)).map(({image, names}): InspectImage => {
    const history = layerHistory(image.config.parsed);
    const platform: Platform = {os: image.platform.os, architecture: image.platform.architecture};
    if (image.platform.variant) platform.variant = image.platform.variant;
    return {
      names,
      configDigest: image.config.digest,
      manifestDigest: image.manifest?.digest ?? null,
      platform,
      created: typeof image.config.parsed.created === 'string' ? image.config.parsed.created : null,
      layers: image.layers.map((l, i) => ({
        digest: l.descriptor.digest,
        diffId: l.diffId,
        size: l.descriptor.size,
        mediaType: l.descriptor.mediaType,
        createdBy: history[i]?.created_by ?? history[i]?.comment ?? null,
      })),
      config: image.config.parsed,
    };
  });
  const absent = listAbsent(archive).map(({child, names}) => ({names, digest: child.descriptor.digest, platform: child.descriptor.platform ?? null, reason: child.absent ?? 'absent'}));
  const artifacts = listArtifacts(archive).map(({artifact, names, descriptor}): InspectArtifact => ({
    digest: artifact.manifest.digest,
    mediaType: artifact.manifest.mediaType,
    kind: artifact.kind,
    artifactType: artifact.artifactType,
    subject: artifact.subject?.digest ?? null,
    annotations: descriptor?.annotations ?? {},
    size: artifact.manifest.bytes.length + artifact.blobs.reduce((n, b) => n + b.descriptor.size, 0),
    names,
    platform: descriptor?.platform ?? null,
  }));
  return {format: archive.format, images, artifacts, absent, warnings: archive.warnings};
}

/** The readable summary `ferry inspect` prints without --json. */
export function renderInspect(result: InspectResult, location: string): string {
  const lines: string[] = [`format: ${result.format} (${location})`];
  for (const [i, image] of result.images.entries()) {
    const cfg = (image.config as {config?: {Entrypoint?: unknown; Cmd?: unknown} | null}).config ?? {};
    lines.push('', `image ${i + 1}: ${image.names.length > 0 ? printable(image.names.join(', ')) : '<untagged>'}`);
    lines.push(`  platform:   ${formatPlatform(image.platform)}`);
    lines.push(`  image ID:   ${image.configDigest}`);
    lines.push(`  manifest:   ${image.manifestDigest ?? '(none in this archive)'}`);
    lines.push(`  created:    ${image.created ?? '-'}`);
    lines.push(`  entrypoint: ${cfg.Entrypoint ? JSON.stringify(cfg.Entrypoint) : '-'}`);
    lines.push(`  cmd:        ${cfg.Cmd ? JSON.stringify(cfg.Cmd) : '-'}`);
    const total = image.layers.reduce((n, l) => n + l.size, 0);
    lines.push(`  layers:     ${image.layers.length} (${humanSize(total)})`);
    for (const [j, l] of image.layers.entries()) {
      const by = (l.createdBy ?? '').replace(/\s+/g, ' ');
      lines.push(`    ${String(j).padStart(2)}  ${l.digest.slice(7, 19)}  ${humanSize(l.size).padStart(10)}  ${printable(by.length > 70 ? `${by.slice(0, 69)}…` : by)}`);
    }
  }
  for (const a of result.artifacts) {
    const about = a.subject ? ` of ${a.subject.slice(0, 19)}` : '';
    lines.push('', printable(`${a.kind}: ${a.artifactType}${about}${a.names.length > 0 ? ` (${a.names.join(', ')})` : ''}`), `  manifest:   ${a.digest} (${humanSize(a.size)})`);
  }
  for (const a of result.absent) lines.push('', `absent: ${a.platform ? formatPlatform(a.platform) : 'manifest'} ${a.digest} of ${a.names.join(', ') || '<untagged>'}: ${a.reason}`);
  return lines.join('\n');
}
