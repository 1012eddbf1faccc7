import {FerryError, UsageError} from '../../errors.js';
import {isOciLayout, readLayout} from '../../formats/layout/read.js';
import {splitSuffix} from '../local.js';
import type {Transport, TransportRef} from '../types.js';

/** What every OCI consumer (containerd, umoci, skopeo) reads as it is: gzip and zstd, not bzip2/xz. */
export const ociAccepts = (c: string): boolean => c === 'none' || c === 'gzip' || c === 'zstd';

/** `oci:DIR[:REF]` / `oci-archive:PATH[:REF]`: REF is the `org.opencontainers.image.ref.name` of one image. */
export function parseLayoutRef(transport: string, rest: string, text: string): TransportRef {
  const [path, suffix] = splitSuffix(rest);
  if (path === '') throw new UsageError(`"${text}": missing path after ${transport}:`);
  if (suffix === '') throw new UsageError(`"${text}": missing image reference after the path`);
  return suffix === undefined ? {transport, path, text} : {transport, path, name: suffix, text};
}

/** `oci:DIR[:REF]` — an OCI image layout directory, read in place. */
export const oci: Transport = {
  name: 'oci',
  usage: 'oci:DIR[:REF]',
  destination: 'oci:DIR',
  parse: (rest, text) => {
    const ref = parseLayoutRef('oci', rest, text);
    if (ref.path === '-') throw new UsageError(`"${text}": oci: is a directory and cannot be written to stdout or read from stdin; use oci-archive:- for a tar on stdout`);
    return ref;
  },
  local: {
    accepts: 'dir',
    detect: isOciLayout,
    async read(source, _ref, options) {
      const tree = source.tree;
      if (!tree || tree.kind !== 'dir') throw new FerryError('BAD_ARCHIVE', `${source.label}: oci: expects a layout directory, got a file (use oci-archive:)`);
      if (!(await isOciLayout(tree))) throw new FerryError('UNKNOWN_FORMAT', `${tree.label}: not an OCI layout: oci-layout or index.json is missing`);
      return readLayout(tree, {limits: options.settings.limits});
    },
  },
  writer: () => ({
    format: 'oci',
    output: 'dir',
    indexes: 'keep',
    accepts: ociAccepts,
    write: async (entries, target, o) => (await import('../../formats/oci/write.js')).writeOciDirectory(entries, target, o),
  }),
};
