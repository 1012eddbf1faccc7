import {FerryError} from '../../errors.js';
import {isOciLayout, readLayout} from '../../formats/layout/read.js';
import {containerProblems, requireTree} from '../local.js';
import {ociAccepts, parseLayoutRef} from '../oci/index.js';
import type {Transport} from '../types.js';

/** `oci-archive:PATH[:REF]` — an OCI image layout in a tar (skopeo's and podman's oci-archive). */
export const ociArchive: Transport = {
  name: 'oci-archive',
  usage: 'oci-archive:PATH[:REF]',
  destination: 'oci-archive:PATH',
  parse: (rest, text) => parseLayoutRef('oci-archive', rest, text),
  local: {
    accepts: 'file',
    detect: isOciLayout,
    async read(source, ref, options) {
      const tree = requireTree(source, 'oci-archive');
      if (tree.kind === 'dir') throw new FerryError('BAD_ARCHIVE', `${source.label}: is a directory, but oci-archive: expects a tar file (use oci:)`);
      if (!(await isOciLayout(tree))) throw new FerryError('UNKNOWN_FORMAT', `${source.label}: not an oci-archive archive: it has neither manifest.json nor oci-layout + index.json`);
      const result = await readLayout(tree, {limits: options.settings.limits});
      return {...result, problems: [...containerProblems(source, ref), ...result.problems]};
    },
  },
  writer: () => ({
    format: 'oci-archive',
    output: 'file',
    indexes: 'keep',
    accepts: ociAccepts,
    write: async (entries, target, o) => (await import('../../formats/oci-archive/write.js')).writeOciArchive(entries, target, o),
  }),
};
