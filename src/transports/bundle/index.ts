import {FerryError, UsageError} from '../../errors.js';
import {hasBundleManifest, readBundle} from '../../formats/bundle/read.js';
import type {Transport} from '../types.js';

/**
 * `bundle:DIR` — an air-gap bundle made by `ferry bundle create` (docs/bundles.md): its parts seen as
 * one archive. Read by every reading command, `ferry serve` and `ferry bundle apply`; written only
 * by `bundle create`.
 */
export const bundle: Transport = {
  name: 'bundle',
  usage: 'bundle:DIR',
  parse(rest, text) {
    if (rest === '' || rest === '-') throw new UsageError(`"${text}": name the bundle's directory: bundle:DIR`);
    return {transport: 'bundle', path: rest, text};
  },
  local: {
    accepts: 'dir',
    detect: hasBundleManifest,
    async read(source, _ref, options) {
      const tree = source.tree;
      if (!tree || tree.kind !== 'dir') throw new FerryError('BAD_ARCHIVE', `${source.label}: bundle: expects the bundle's directory`);
      const {manifest: _manifest, ...result} = await readBundle(tree, {limits: options.settings.limits});
      return result;
    },
  },
};
