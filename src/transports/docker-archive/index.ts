import {FerryError, UsageError} from '../../errors.js';
import {hasDockerManifest, readDockerArchive} from '../../formats/docker-archive/read.js';
import {isOciLayout} from '../../formats/layout/read.js';
import type {Compression} from '../../model/media-types.js';
import {containerProblems, requireTree, splitSuffix} from '../local.js';
import type {Transport, TransportRef} from '../types.js';

/**
 * `docker-archive:PATH[:NAME|@INDEX]` — `docker save` output, both layouts (docs/formats.md §1–2). NAME
 * picks an image by one of its names, @INDEX by its position in manifest.json (skopeo's grammar).
 */
export const dockerArchive: Transport = {
  name: 'docker-archive',
  usage: 'docker-archive:PATH[:NAME|@INDEX]',
  destination: 'docker-archive:PATH',
  parse(rest, text) {
    const [path, suffix] = splitSuffix(rest);
    if (path === '') throw new UsageError(`"${text}": missing path after docker-archive:`);
    const ref: TransportRef = {transport: 'docker-archive', path, text};
    if (suffix === undefined) return ref;
    if (suffix.startsWith('@')) {
      const index = Number(suffix.slice(1));
      if (!/^@\d+$/.test(suffix) || !Number.isSafeInteger(index)) throw new UsageError(`"${text}": @INDEX must be a number (the image's position in manifest.json, from 0)`);
      return {...ref, index};
    }
    if (suffix === '') throw new UsageError(`"${text}": missing image name after the path`);
    return {...ref, name: suffix};
  },
  local: {
    accepts: 'both',
    detect: hasDockerManifest,
    async read(source, ref, options) {
      const tree = requireTree(source, 'docker-archive');
      if (!(await hasDockerManifest(tree))) {
        if (await isOciLayout(tree)) throw new FerryError('UNKNOWN_FORMAT', `${source.label}: not a docker-archive: it has no manifest.json (it is an OCI layout: use ${tree.kind === 'dir' ? 'oci:' : 'oci-archive:'})`);
        throw new FerryError('UNKNOWN_FORMAT', `${source.label}: not a docker-archive: it has no manifest.json`);
      }
      const result = await readDockerArchive(tree, {limits: options.settings.limits});
      return {...result, problems: [...containerProblems(source, ref), ...result.problems]};
    },
  },
  writer(_ref, options) {
    const layout = options.dockerLayout ?? 'oci';
    return {
      format: 'docker-archive',
      output: 'file',
      indexes: layout === 'legacy' ? 'one' : 'keep+primary',
      // Docker 20.10 loads none/gzip/bzip2/xz, not zstd; the OCI view must also suit containerd.
      accepts: layout === 'legacy' ? (c: Compression) => c !== 'zstd' : (c: Compression) => c === 'none' || c === 'gzip',
      write: async (entries, target, o) => (await import('../../formats/docker-archive/write.js')).writeDockerArchive(entries, target, {...o, layout}),
    };
  },
};
