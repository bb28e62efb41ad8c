import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { LOGGER_CONTEXT, MASTER_ONLY_METADATA } from '../master-election.constants.js';
import { MASTER_ONLY_SKIPPED } from '../master-election.messages.js';
import type { MasterOnlyMetadata } from '../master-election-metadata.accessor.js';
import { resolveMasterOnly } from '../master-only.registry.js';

const logger = new Logger(LOGGER_CONTEXT);

/** Copies the Reflect metadata of `from` (set by decorators applied before) to `to`. */
function copyMetadata(from: object, to: object): void {
  for (const key of Reflect.getOwnMetadataKeys(from)) {
    Reflect.defineMetadata(key, Reflect.getOwnMetadata(key, from), to);
  }
}

/**
 * Runs the decorated method only while this process is master of the
 * election `name` (default: the default registration), that is while
 * `MasterElectionService.isMaster()` is true. Otherwise the call returns
 * without running the method (logged at debug level once per term, not on
 * every call): `undefined`, or for an `async` method a promise of
 * `undefined`, so callers can always `await` it (and `.then()` it) whether it
 * ran or not. A method that is not declared `async` but returns a promise
 * gets plain `undefined` when skipped.
 *
 * The election is found through DI: the methods of static providers and
 * controllers are bound to their application's election at module init. A
 * call on an instance created outside Nest (or of a request-scoped or
 * transient provider) is always skipped.
 *
 * Meant for leader-only jobs: it stacks with `@Cron()`, `@Interval()` and
 * `@Timeout()` of `@nestjs/schedule` (and other metadata decorators) in
 * either order, since the wrapper carries the metadata of the original
 * method. The check happens at each call. A call still running when the
 * term ends is not interrupted: the term is released only once it has
 * finished (drain, bounded by the `drainTimeoutMs` option), so the next
 * master does not start the same work meanwhile. To stop at once instead,
 * watch the term's `signal` (`currentTerm.signal`, taken at the start of
 * the call) and set `drainTimeoutMs: 0`.
 */
export function MasterOnly(name?: string): MethodDecorator {
  return <T>(
    target: object,
    key: string | symbol,
    descriptor: TypedPropertyDescriptor<T>,
  ): TypedPropertyDescriptor<T> => {
    const original: unknown = descriptor.value;
    if (typeof original !== 'function') {
      throw new TypeError(
        `${String(key)} of ${target.constructor.name}: @MasterOnly() applies to methods only`,
      );
    }
    const label = `${target.constructor.name}.${String(key)}`;
    // An `async` method: a skipped call must still return a promise.
    const isAsync = Object.prototype.toString.call(original) === '[object AsyncFunction]';
    let unboundLogged = false;
    const wrapper = function (this: unknown, ...args: unknown[]): unknown {
      const run = (): unknown => (original as (...a: unknown[]) => unknown).apply(this, args);
      const target = resolveMasterOnly(this, name);
      if (target) return target.call(label, isAsync, run);
      if (!unboundLogged) {
        unboundLogged = true;
        logger.debug(MASTER_ONLY_SKIPPED(label, name));
      }
      return isAsync ? Promise.resolve(undefined) : undefined;
    };
    copyMetadata(original, wrapper);
    Object.defineProperty(wrapper, 'name', { value: original.name, configurable: true });
    Object.defineProperty(wrapper, 'length', { value: original.length, configurable: true });
    const metadata: MasterOnlyMetadata = { name };
    Reflect.defineMetadata(MASTER_ONLY_METADATA, metadata, wrapper);
    descriptor.value = wrapper as T;
    return descriptor;
  };
}
