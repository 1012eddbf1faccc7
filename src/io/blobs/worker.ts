import {parentPort} from 'node:worker_threads';
import {executeJob} from './jobs.js';
import {serializeError, type FromWorker, type ToWorker} from './pool.js';

/** Progress is batched: one message per this many bytes keeps the main thread's share negligible. */
const REPORT_EVERY = 8 << 20;

// The worker side of BlobPool: one job at a time, progress in batches, errors as plain data.
const port = parentPort;
if (!port) throw new Error('worker.js runs as a worker thread of BlobPool');
port.on('message', ({id, job}: ToWorker) => {
  let unreported = 0;
  const onBytes = (bytes: number): void => {
    unreported += bytes;
    if (unreported >= REPORT_EVERY) {
      port.postMessage({id, progress: unreported} satisfies FromWorker);
      unreported = 0;
    }
  };
  executeJob(job, onBytes).then(
    (result) => {
      if (unreported > 0) port.postMessage({id, progress: unreported} satisfies FromWorker);
      port.postMessage({id, result} satisfies FromWorker);
    },
    (error: unknown) => port.postMessage({id, error: serializeError(error)} satisfies FromWorker),
  );
});
