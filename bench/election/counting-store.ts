/**
 * A store whose locks count the operations the engine asks of them: reads,
 * watches opened, and writes (create, renew, release, depose: every store
 * mutation the engine can make, won or lost). Counted at the storage port,
 * so the same figure means the same thing on every backend. Each lock is
 * the backend's own behind a proxy: calls and results pass through.
 */
import type { ElectionLock, ElectionStore, LockRequest } from '../../lib/election/index.js';

const COUNTED = ['read', 'watch', 'create', 'renew', 'release', 'depose'] as const;
type Counted = (typeof COUNTED)[number];

/** Operation counts, shared by every lock of the stores that were given it. */
export class PortCounts {
  readonly calls: Record<Counted, number> = {
    read: 0,
    watch: 0,
    create: 0,
    renew: 0,
    release: 0,
    depose: 0,
  };

  get renews(): number {
    return this.calls.renew;
  }

  /** Store mutations the engine asked for (each a compare-and-set). */
  get writes(): number {
    const c = this.calls;
    return c.create + c.renew + c.release + c.depose;
  }

  /** Every operation sent to the store through the port. */
  get operations(): number {
    return this.writes + this.calls.read + this.calls.watch;
  }
}

const isCounted = (prop: string | symbol): prop is Counted =>
  (COUNTED as readonly (string | symbol)[]).includes(prop);

/** Wraps `store` so that its locks add to `counts`. */
export function countingStore(store: ElectionStore, counts: PortCounts): ElectionStore {
  const count = (lock: ElectionLock): ElectionLock =>
    new Proxy(lock, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (!isCounted(prop) || typeof value !== 'function') return value;
        return (...args: unknown[]): unknown => {
          counts.calls[prop]++;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  return {
    backend: store.backend,
    openLock: async (request: LockRequest) => count(await store.openLock(request)),
    toString: () => store.toString(),
  };
}
