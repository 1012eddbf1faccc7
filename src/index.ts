/**
 * ferry's public API: open an archive in any form, work on the model, write it in any form.
 * Re-exports only; see README.md "Architecture".
 */
export {FerryError, UsageError, DigestMismatchError, SizeMismatchError, InterruptedError, exitCodeFor, type FerryErrorCode} from './errors.js';
export type {Archive, ArchiveEntry, FormatName, Image, ImageIndex, IndexChild, Layer, RawDocument} from './model/image.js';
export {listImages} from './model/image.js';
export type {ConfigBlob, ImageConfig, HistoryEntry} from './model/config.js';
export type {Descriptor} from './model/descriptor.js';
export {chainIds, sha256Of, type Digest} from './model/digest.js';
export {MediaType, toDockerMediaType, toOciMediaType, type Compression} from './model/media-types.js';
export {parsePlatform, formatPlatform, type Platform} from './model/platform.js';
export {parseReference, fullName, familiarName, sameReference, type Reference} from './model/reference.js';
export {openArchive, parseSource, parseDestination, type OpenOptions} from './transports.js';
export {installCleanup} from './io/cleanup.js';
export {inspectArchive, renderInspect, type InspectResult} from './ops/inspect.js';
export {verifyArchive, type VerifyResult} from './ops/verify.js';
export {writeArchive, type WriteOptions, type WriteSummary} from './ops/write-archive.js';
export {convertArchive, type ConvertOptions} from './ops/convert.js';
export {exportImage, flattenImage, type ExportOptions} from './ops/flatten.js';
export {squashImage, squashToArchive, type SquashCommandOptions} from './ops/squash.js';
export {importRootfs, parseChanges, type ImportOptions} from './ops/import.js';
export {listImage, type ListOptions} from './ops/ls.js';
export {catFile, type CatOptions} from './ops/cat.js';
export {selectImages} from './ops/select.js';
export {walkTar, type TarEntry} from './tar/walk.js';
export {encodeHeader, type HeaderSpec} from './tar/write.js';
export type {Progress} from './ops/progress.js';
