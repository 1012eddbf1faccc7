/** Media types of OCI and Docker schema2, with the mapping containers/image uses (docs/formats.md §3). */
export const MediaType = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondist: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNondistGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociLayerNondistZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  inToto: 'application/vnd.in-toto+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export type Compression = 'none' | 'gzip' | 'zstd' | 'bzip2' | 'xz';

const OCI_TO_DOCKER: Record<string, string> = {
  [MediaType.ociIndex]: MediaType.dockerManifestList,
  [MediaType.ociManifest]: MediaType.dockerManifest,
  [MediaType.ociConfig]: MediaType.dockerConfig,
  [MediaType.ociLayer]: MediaType.dockerLayer,
  [MediaType.ociLayerGzip]: MediaType.dockerLayerGzip,
  [MediaType.ociLayerNondist]: MediaType.dockerForeignLayer,
  [MediaType.ociLayerNondistGzip]: MediaType.dockerForeignLayerGzip,
};
const DOCKER_TO_OCI: Record<string, string> = Object.fromEntries(Object.entries(OCI_TO_DOCKER).map(([k, v]) => [v, k]));

export function toDockerMediaType(mediaType: string): string | undefined {
  return mediaType.startsWith('application/vnd.docker.') ? mediaType : OCI_TO_DOCKER[mediaType];
}

export function toOciMediaType(mediaType: string): string {
  return DOCKER_TO_OCI[mediaType] ?? mediaType;
}

export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

export function isManifestMediaType(mediaType: string | undefined): boolean {
  return mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest;
}

export function isNondistributable(mediaType: string): boolean {
  return mediaType.includes('nondistributable') || mediaType.includes('foreign');
}

/** The layer media type for a compression, in the OCI or Docker vocabulary. */
export function layerMediaType(compression: Compression, flavour: 'oci' | 'docker'): string {
  if (flavour === 'docker') {
    if (compression === 'none') return MediaType.dockerLayer;
    if (compression === 'gzip') return MediaType.dockerLayerGzip;
    // Docker schema2 has no zstd/bzip2/xz type; docker sniffs layer bytes anyway (docs/formats.md §1 step 4).
    return MediaType.dockerLayerGzip;
  }
  if (compression === 'none') return MediaType.ociLayer;
  if (compression === 'gzip') return MediaType.ociLayerGzip;
  if (compression === 'zstd') return MediaType.ociLayerZstd;
  return MediaType.ociLayer;
}

/** Compression a layer media type announces (bytes are sniffed anyway: tools mislabel, docs/formats.md §3). */
export function compressionOfMediaType(mediaType: string): Compression | undefined {
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.tar.gzip')) return 'gzip';
  if (mediaType.endsWith('+zstd')) return 'zstd';
  if (mediaType.endsWith('.tar') || mediaType.endsWith('diff.tar')) return 'none';
  return undefined;
}
