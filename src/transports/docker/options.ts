export type {RegistryOptions} from '../../settings.js';

export const DEFAULT_RETRIES = 5;
export const DEFAULT_JOBS = 4;
/** Registries refuse manifests above 4 MiB (distribution's limit); so does ferry reading one. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
