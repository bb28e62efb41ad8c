/**
 * How a `@MasterOnly()` method wrapper finds the election it depends on.
 *
 * The wrapper only has `this`. The explorer binds every provider instance
 * that has `@MasterOnly()` methods to the elections of its application, so
 * several applications in one process (and several elections in one
 * application) never mix. When `this` is not bound (an instance created
 * outside Nest, a request-scoped provider), the wrapper falls back to the
 * election of that name if exactly one is running in the process.
 */
import { DEFAULT_ELECTION, type ElectionKey } from './master-election.constants.js';

/** What a `@MasterOnly()` wrapper needs of an election. */
export interface MasterOnlyTarget {
  isMaster(): boolean;
}

const bound = new WeakMap<object, Map<ElectionKey, MasterOnlyTarget>>();
const running = new Map<ElectionKey, Set<MasterOnlyTarget>>();

/** Binds `instance`'s `@MasterOnly(key)` methods to `target`. */
export function bindMasterOnly(instance: object, key: ElectionKey, target: MasterOnlyTarget): void {
  let map = bound.get(instance);
  if (!map) bound.set(instance, (map = new Map<ElectionKey, MasterOnlyTarget>()));
  map.set(key, target);
}

/** Makes `target` findable by the fallback under each of `keys` (until {@link removeRunning}). */
export function addRunning(keys: readonly ElectionKey[], target: MasterOnlyTarget): void {
  for (const key of keys) {
    let set = running.get(key);
    if (!set) running.set(key, (set = new Set<MasterOnlyTarget>()));
    set.add(target);
  }
}

/** Undoes {@link addRunning}. */
export function removeRunning(target: MasterOnlyTarget): void {
  for (const [key, set] of running) {
    set.delete(target);
    if (set.size === 0) running.delete(key);
  }
}

/** The election a `@MasterOnly(name)` call on `self` depends on, if it can be told. */
export function resolveMasterOnly(
  self: unknown,
  name: string | undefined,
): MasterOnlyTarget | undefined {
  const key: ElectionKey = name ?? DEFAULT_ELECTION;
  if ((typeof self === 'object' && self !== null) || typeof self === 'function') {
    const target = bound.get(self)?.get(key);
    if (target) return target;
  }
  const candidates = running.get(key);
  if (candidates?.size === 1) {
    const [only] = candidates;
    return only;
  }
  return undefined;
}
