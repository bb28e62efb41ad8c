import 'reflect-metadata';
import { ELECTION_HANDLERS_METADATA } from '../master-election.constants.js';
import type {
  ElectionEvent,
  ElectionHandlerMetadata,
} from '../master-election-metadata.accessor.js';

function electionHandler(event: ElectionEvent, name: string | undefined): MethodDecorator {
  return (target, key, descriptor) => {
    const method: unknown = descriptor.value;
    if (typeof method !== 'function') {
      throw new TypeError(
        `${String(key)} of ${target.constructor.name}: election event decorators apply to methods only`,
      );
    }
    const previous =
      (Reflect.getMetadata(ELECTION_HANDLERS_METADATA, method) as
        readonly ElectionHandlerMetadata[] | undefined) ?? [];
    // A new array each time: a wrapper that copied the metadata must not see later additions.
    Reflect.defineMetadata(ELECTION_HANDLERS_METADATA, [...previous, { event, name }], method);
    return descriptor;
  };
}

/**
 * Calls the decorated method when this process becomes master of the
 * election `name` (default: the default registration), with the new
 * {@link MasterTerm} (its `fencingToken`, and a `signal` that aborts the
 * moment the term ends).
 *
 * The process counts as master (`isMaster()`, `state$`) only once every
 * `@OnBecomeMaster` handler of the term has completed; they run
 * concurrently and may be async. If one throws or rejects, the term is
 * given up and a new election forced, which this process sits out (it
 * takes part again once another process has become master, or after
 * `leaseMs`), so another participant takes over. The error is logged and
 * goes to the `@OnElectionError` handlers: the handler's own error when one
 * failed, an `AggregateError` (its `errors` hold each one) when several did.
 * Leader-only work started here should stop when `term.signal` aborts.
 *
 * Works on methods of static providers and controllers; stackable.
 */
export function OnBecomeMaster(name?: string): MethodDecorator {
  return electionHandler('becomeMaster', name);
}

/**
 * Calls the decorated method with the new master's `host:port` and its
 * term's fencing token, `(master: string, fencingToken: number)`, whenever
 * another process is (or becomes) master of the election `name`: at start
 * when a master exists, and on every later change of master.
 */
export function OnBecomeSlave(name?: string): MethodDecorator {
  return electionHandler('becomeSlave', name);
}

/**
 * Calls the decorated method with every non-fatal error of the election
 * `name`: a master term ending involuntarily (`MasterStepDownError`), a
 * failing `@OnBecomeMaster` or `@OnBecomeSlave` handler, a failed request.
 * When several `@OnBecomeMaster` handlers of one term fail, it receives one
 * `AggregateError` whose `errors` are theirs (each is also logged).
 */
export function OnElectionError(name?: string): MethodDecorator {
  return electionHandler('electionError', name);
}

/**
 * Calls the decorated method with the `ElectionFatalError` when the election
 * `name` cannot go on (for example, Doozer refused access) and has stopped.
 */
export function OnElectionFatal(name?: string): MethodDecorator {
  return electionHandler('electionFatal', name);
}
