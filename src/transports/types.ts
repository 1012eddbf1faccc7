import type {FormatWriteOptions, FormatWriteResult} from '../formats/layout/write.js';

export type {FormatWriteResult, ManifestFormat, UploadStats} from '../formats/layout/write.js';
import type {FileTree} from '../io/fs/file-tree.js';
import type {OpenedInput} from '../io/fs/input.js';
import type {ArchiveEntry, Blob, ReadResult} from '../model/image.js';
import type {Compression} from '../model/media-types.js';
import type {Platform} from '../model/platform.js';
import type {DaemonOptions, RegistryOptions, Settings} from '../settings.js';

/**
 * A parsed transport reference (containers/image's grammar, which skopeo users already type):
 * `docker-archive:PATH[:NAME|@INDEX]`, `oci:DIR[:REF]`, `oci-archive:PATH[:REF]`, `rootfs:PATH`,
 * `docker://[HOST/]REPO[:TAG|@DIGEST]`.
 */
export interface TransportRef {
  /** The transport named by the prefix; undefined when the form is to be detected. */
  transport: string | undefined;
  /** File or directory (`-` is stdin/stdout); for a registry, the reference in full (host/repo:tag). */
  path: string;
  /** `:NAME` / `:REF`: one image by name (docker-archive: RepoTags; oci forms: the ref.name annotation). */
  name?: string;
  /** `@INDEX`: one image by position (docker-archive). */
  index?: number;
  /** The reference as the user wrote it. */
  text: string;
}

export interface ReadOptions {
  settings: Settings;
  /** What `-` reads (the CLI passes process.stdin). */
  stdin?: NodeJS.ReadableStream | undefined;
  /** docker://: also read the signatures, SBOMs and attestations that refer to the image. */
  referrers?: boolean;
}

/** An opened local input, indexed: a directory in place or a tar by its headers. */
export interface LocalSource {
  input: OpenedInput;
  /** The tree of a directory or a tar (undefined for a file that is not a tar). */
  tree: FileTree | undefined;
  label: string;
}

/** How multi-platform indexes fit a destination form. */
export type IndexPolicy = 'keep' | 'keep+primary' | 'one';

/** What the write op needs to know about a destination, and the writer itself. */
export interface ArchiveWriter {
  format: string;
  /** What the writer fills: a file, a directory, or something elsewhere (a registry: nothing local to replace). */
  output: 'file' | 'dir' | 'remote';
  /** `keep` (the whole index), `keep+primary` (the whole index, plus one image per name for docker's manifest.json), `one` (single images only). */
  indexes: IndexPolicy;
  /** Layer compressions every consumer of this form loads as they are (docs/formats.md §9). */
  accepts(compression: Compression): boolean;
  /** The destination reference itself names the image (a registry): --tag has nothing to name. */
  namedByReference?: boolean;
  /** True for a blob the destination takes without its bytes (a registry mounting it from another of its repositories). */
  canMount?(blob: Blob): boolean;
  /** False for a destination that keeps no manifest bytes at all (a daemon): keepDigests has nothing to keep there. */
  keepsManifests?: boolean;
  /** Learns what the destination takes before anything is planned (a daemon's API version); indexes and accepts may change. */
  prepare?(): Promise<void>;
  write(entries: readonly ArchiveEntry[], target: string, options: FormatWriteOptions): Promise<FormatWriteResult>;
}

export interface WriterOptions {
  /** docker-archive: `oci` (Docker 25+ layout, the default) or `legacy` (Docker ≤ 24). */
  dockerLayout?: 'oci' | 'legacy';
  /** docker://: how the registry is reached. */
  registry?: RegistryOptions;
  /** docker-daemon:: which daemon. */
  daemon?: DaemonOptions;
}

/**
 * One row of the transport table (table.ts): the name, its reference grammar, how it recognises its
 * form among local inputs, how it reads, and how it writes when it can.
 */
export interface Transport {
  readonly name: string;
  /** One line for help and errors ("docker-archive:PATH[:NAME|@INDEX]"). */
  readonly usage: string;
  /** The same for a destination, when it differs ("oci:DIR"). */
  readonly destination?: string;
  /** Parses what follows `name:`. */
  parse(rest: string, text: string): TransportRef;
  /** Local forms: what kind of input it reads in place. */
  readonly local?: {
    accepts: 'file' | 'dir' | 'both';
    /** Recognises the form in an opened tree (table order is detection order). */
    detect?(tree: FileTree): Promise<boolean>;
    read(source: LocalSource, ref: TransportRef, options: ReadOptions & {platform?: Platform}): Promise<ReadResult>;
  };
  /** Remote forms (a registry): read over the network, closed when the archive is. */
  readonly remote?: {
    read(ref: TransportRef, options: ReadOptions): Promise<ReadResult & {close(): Promise<void>}>;
  };
  /** The writer, for forms ferry writes. */
  writer?(ref: TransportRef, options: WriterOptions): ArchiveWriter;
}
