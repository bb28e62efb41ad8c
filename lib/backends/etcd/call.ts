/** Bounding one etcd call by the engine's timeout and abort signal. */
import type { LockCallOptions } from '../../election/port.js';
import { EtcdStoreError } from './errors.js';

/** gRPC call options with the call's deadline. */
export const grpcOptions = (options: LockCallOptions): { deadline: Date } => ({
  deadline: new Date(Date.now() + options.timeoutMs),
});

/**
 * Settles with `work`, or rejects with a transient {@link EtcdStoreError}
 * when `options.timeoutMs` passes or `options.signal` aborts first. (The
 * call itself also carries the deadline, so etcd stops working on it.)
 */
export async function bounded<T>(
  what: string,
  options: LockCallOptions,
  work: Promise<T>,
): Promise<T> {
  const { signal, timeoutMs } = options;
  if (signal?.aborted) {
    work.catch(() => {});
    throw new EtcdStoreError('transient', `etcd ${what}: aborted`);
  }
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new EtcdStoreError('transient', `etcd ${what}: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    onAbort = () => reject(new EtcdStoreError('transient', `etcd ${what}: aborted`));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, limit]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    work.catch(() => {});
  }
}
