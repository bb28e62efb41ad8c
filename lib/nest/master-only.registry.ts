/**
 * How a `@MasterOnly()` method wrapper finds the election it depends on.
 *
 * The wrapper only has `this`. The explorer binds every provider and
 * controller instance that has `@MasterOnly()` methods to the elections of
 * its application (through DI, at module init), so several applications in
 * one process, and several elections in one application, never mix. There
 * is no process-wide fallback: a call on an instance that is not bound (one
 * created outside Nest, or a request-scoped or transient provider) is
 * skipped.
 */
import { DEFAULT_ELECTION, type ElectionKey } from './master-election.constants.js';

/** What a `@MasterOnly()` wrapper needs of an election. */
export interface MasterOnlyTarget {
  /** Runs `fn` if this process is master; otherwise returns (a promise of, for `async`) `undefined`. */
  call(label: string, isAsync: boolean, fn: () => unknown): unknown;
}

const bound = new WeakMap<object, Map<ElectionKey, MasterOnlyTarget>>();

/** Binds `instance`'s `@MasterOnly(key)` methods to `target`. */
export function bindMasterOnly(instance: object, key: ElectionKey, target: MasterOnlyTarget): void {
  let map = bound.get(instance);
  if (!map) bound.set(instance, (map = new Map<ElectionKey, MasterOnlyTarget>()));
  map.set(key, target);
}

/** The election a `@MasterOnly(name)` call on `self` depends on, if `self` was bound to one. */
export function resolveMasterOnly(
  self: unknown,
  name: string | undefined,
): MasterOnlyTarget | undefined {
  if ((typeof self !== 'object' || self === null) && typeof self !== 'function') return undefined;
  return bound.get(self)?.get(name ?? DEFAULT_ELECTION);
}
