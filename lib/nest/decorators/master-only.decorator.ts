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
 * without running the method (logged at debug level): `undefined`, or for an
 * `async` method a promise of `undefined`, so callers can always `await` it
 * (and `.then()` it) whether it ran or not. A method that is not declared
 * `async` but returns a promise gets plain `undefined` when skipped.
 *
 * Meant for leader-only jobs: it stacks with `@Cron()`, `@Interval()` and
 * `@Timeout()` of `@nestjs/schedule` (and other metadata decorators) in
 * either order, since the wrapper carries the metadata of the original
 * method. The check happens at each call; a long-running call is not
 * interrupted when the term ends (watch `currentTerm.signal` for that).
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
    const wrapper = function (this: unknown, ...args: unknown[]): unknown {
      if (resolveMasterOnly(this, name)?.isMaster() !== true) {
        logger.debug(MASTER_ONLY_SKIPPED(label, name));
        return isAsync ? Promise.resolve(undefined) : undefined;
      }
      return (original as (...a: unknown[]) => unknown).apply(this, args);
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
