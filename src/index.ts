/**
 * ferry's public API (docs/library.md): open an image source in any form, work on the model, write
 * it in any form. Re-exports only; every function takes its options (limits, temp dir, workers,
 * progress, the streams for `-`) as arguments and reads nothing from the environment.
 */
export {FerryError, UsageError, DigestMismatchError, SizeMismatchError, InterruptedError, EXIT_CODES, exitCodeFor, type FerryErrorCode} from './errors.js';
export {DEFAULT_LIMITS, resolveSettings, type Limits, type Settings, type SettingsInput} from './settings.js';

export type {Archive, ArchiveEntry, FormatName, Image, ImageIndex, IndexChild, Layer, ListedImage, OpenOptions as LayerOpenOptions, RawDocument, ReadResult, Region} from './model/image.js';
export {imagesOf, isImageIndex, listImages} from './model/image.js';
export type {ConfigBlob, ImageConfig, HistoryEntry} from './model/config.js';
export type {Descriptor} from './model/descriptor.js';
export {chainIds, sha256Of, type Digest} from './model/digest.js';
export {MediaType, toDockerMediaType, toOciMediaType, type Compression} from './model/media-types.js';
export {parsePlatform, formatPlatform, type Platform} from './model/platform.js';
export {parseReference, fullName, familiarName, sameReference, type Reference} from './model/reference.js';
export {parseChanges} from './model/changes.js';
export type {ContainerConfigChanges} from './model/empty.js';

export {openArchive, parseDestination, parseSource, type OpenArchiveOptions} from './transports/table.js';
export type {TransportRef} from './transports/types.js';

export {inspectArchive, renderInspect, type InspectImage, type InspectLayer, type InspectResult} from './ops/inspect.js';
export {verifyArchive, type VerifyOptions, type VerifyResult} from './ops/verify.js';
export {writeArchive, type WriteOptions, type WriteSummary} from './ops/write-archive.js';
export {convertArchive, type ConvertOptions, type ConvertSummary} from './ops/convert.js';
export {exportImage, exportStream, flattenImage, type ExportOptions, type ExportSummary, type FlattenedImage} from './ops/flatten.js';
export {squashImage, squashToArchive, type SquashOptions, type SquashResult, type SquashSummary} from './ops/squash.js';
export {importRootfs, type ImportOptions, type ImportSummary} from './ops/import.js';
export {listImage, renderListing, type ListedEntry, type Listing, type ListOptions} from './ops/ls.js';
export {catFile, type CatOptions, type CatResult} from './ops/cat.js';
export {pickImage, selectEntries, selectImages} from './ops/select.js';
export {humanSize, parseByteSize} from './ops/format.js';
export type {Progress} from './ops/progress.js';
export {removeAllPending} from './io/fs/temp.js';
export {analyzeArchive, analyzeImage, type AnalyzeOptions, type AnalyzeResult, type AnalyzedLayer, type DuplicateGroup, type HiddenCopyReport, type HidingEntry, type ReclaimablePath} from './ops/analyze/analyze.js';
export type {SquashOption} from './ops/analyze/squash-plan.js';
export type {SizeNode} from './ops/analyze/sizes.js';
export {renderAnalysis, renderCi} from './ops/analyze/render.js';
export {renderHtmlReport} from './ops/analyze/html.js';
export {CI_DEFAULTS, evaluateCi, junitReport, loadCiConfig, parseCiConfig, resolveCiRules, type CiResult, type CiRule, type CiRuleName, type CiRuleResult, type CiValues} from './ops/analyze/ci.js';
export {diffArchives, diffImages, renderDiff, type ConfigDiff, type DiffOptions, type DiffResult, type DiffSelectOptions, type DiffSide, type FieldChange, type FileChange, type FileDifference, type FileState, type HistoryChange, type ValueChange} from './ops/diff.js';
export {rawConfig, rawManifest, type RawOptions, type RawResult} from './ops/raw.js';

export {pullImages, pushImages, listTags, login, logout, registrySource, archiveDestination, type PullSummary, type PushOptions, type PushSummary, type RegistryTransferOptions, type TransferItem} from './ops/registry.js';
export type {TransferSummary} from './ops/write-archive.js';
export type {RegistryOptions} from './settings.js';
export {RegistryClient, type ApiRequest, type ApiResponse} from './transports/docker/client.js';
export {parseRegistryRef, formatRegistryRef, type RegistryRef} from './transports/docker/reference.js';
export {findCredential, type Credential} from './transports/docker/credentials.js';
