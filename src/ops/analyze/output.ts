import {writeFile} from 'node:fs/promises';
import {ioError} from '../../errors.js';
import {beginAtomicOutput} from '../../io/fs/atomic.js';

/**
 * Writes a report (the HTML picture, a JUnit file) atomically: under a temp name beside it, renamed
 * into place at the end. A report is regenerated on every run, so an existing file is replaced —
 * a file only, never a directory (src/io/fs/atomic.ts).
 */
export async function writeReport(destination: string, text: string): Promise<void> {
  const out = await beginAtomicOutput(destination, 'file', {force: true});
  try {
    await writeFile(out.tempPath, text, {mode: 0o644}).catch((e: unknown) => {
      throw ioError(e, destination);
    });
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
}
