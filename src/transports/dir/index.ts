import {UsageError} from '../../errors.js';
import {isDirLayout, readDirLayout} from '../../formats/dir/read.js';
import {requireTree} from '../local.js';
import type {Transport} from '../types.js';

/** `dir:DIR` — containers/image's directory layout (skopeo, podman save --format docker-dir): read only. */
export const dir: Transport = {
  name: 'dir',
  usage: 'dir:DIR',
  parse(rest, text) {
    if (rest === '') throw new UsageError(`"${text}": missing directory after dir:`);
    return {transport: 'dir', path: rest, text};
  },
  local: {
    accepts: 'dir',
    detect: isDirLayout,
    read: (source, _ref, options) => readDirLayout(requireTree(source, 'dir: layout'), {limits: options.settings.limits}),
  },
};
