/**
 * A byte range of a file as plain data: what crosses to a worker thread (no handles, no streams)
 * and what a layer whose blob sits in a file exposes (`Layer.region`), so it can be copied by
 * offset or walked without reading the bodies it skips. FileRange (src/io/bytes/file-range.ts) adds the methods.
 */
export interface Region {
  readonly path: string;
  readonly offset: number;
  readonly size: number;
  /** Human name for errors: "edge.tar:blobs/sha256/ab…". */
  readonly label: string;
}
