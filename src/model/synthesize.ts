import type {Digest} from './digest.js';
import type {Platform} from './platform.js';

/** Container config fields `docker import --change` / `docker commit` may set. */
export interface ContainerConfigChanges {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

export interface ImportedConfigOptions {
  diffId: Digest;
  platform: Platform;
  /** RFC 3339; deterministic callers pass something derived from the input. */
  created: string;
  comment: string;
  config?: ContainerConfigChanges;
}

/**
 * The config `docker import` writes for a rootfs tar (FORMATS.md §7): one layer, one history entry
 * with a comment and no created_by. Keys in a fixed order so the bytes (image ID) are deterministic.
 */
export function importedConfigBytes(o: ImportedConfigOptions): Buffer {
  const config: Record<string, unknown> = {
    architecture: o.platform.architecture,
    ...(o.platform.variant ? {variant: o.platform.variant} : {}),
    config: o.config ?? {},
    created: o.created,
    history: [{created: o.created, comment: o.comment}],
    os: o.platform.os,
    rootfs: {type: 'layers', diff_ids: [o.diffId]},
  };
  return Buffer.from(JSON.stringify(config));
}
