/** Where encoded bytes go, in order. The view may be reused once the returned promise resolves. */
export type Emit = (data: Buffer) => void | Promise<void>;

/** An encoder takes chunks (it may not keep them past the returned promise) and emits its output. */
export interface Encoder {
  write(data: Buffer): Promise<void>;
  end(): Promise<void>;
}
