/**
 * Entry path safety (what escapes the image root, and why docker's applier is the reference) lives
 * beside the tar walker, so io/ and formats/ can check entries without importing ops/.
 */
export {entryPathProblem} from '../tar/walk.js';
