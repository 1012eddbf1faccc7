/** Caps on metadata reads (containers/image capped JSON reads after CVE-2020-1702). */
export const MAX_JSON_BYTES = Number(process.env.FERRY_MAX_JSON ?? 16 * 1024 * 1024);
/** Nested index depth accepted before we call it a loop. */
export const MAX_INDEX_DEPTH = 8;
