import {layerHistory} from '../model/config.js';
import {listAbsent, type Archive} from '../model/image.js';
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

export interface InspectResult {
  format: string;
  images: InspectImage[];
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
  return {format: archive.format, images, absent, warnings: archive.warnings};
}

/** The readable summary `ferry inspect` prints without --json. */
export function renderInspect(result: InspectResult, location: string): string {
  const lines: string[] = [`format: ${result.format} (${location})`];
  for (const [i, image] of result.images.entries()) {
    const cfg = (image.config as {config?: {Entrypoint?: unknown; Cmd?: unknown} | null}).config ?? {};
    lines.push('', `image ${i + 1}: ${image.names.length > 0 ? image.names.join(', ') : '<untagged>'}`);
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
      lines.push(`    ${String(j).padStart(2)}  ${l.digest.slice(7, 19)}  ${humanSize(l.size).padStart(10)}  ${by.length > 70 ? `${by.slice(0, 69)}…` : by}`);
    }
  }
  for (const a of result.absent) lines.push('', `absent: ${a.platform ? formatPlatform(a.platform) : 'manifest'} ${a.digest} of ${a.names.join(', ') || '<untagged>'}: ${a.reason}`);
  return lines.join('\n');
}
