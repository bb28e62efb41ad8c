/** Tokens, metadata keys and defaults of the Nest integration. */

/** Metadata key (on the method function) of the election event handlers it declares. */
export const ELECTION_HANDLERS_METADATA = 'nestjs-master-election:handlers';

/** Metadata key (on the method wrapper) of a `@MasterOnly()` method. */
export const MASTER_ONLY_METADATA = 'nestjs-master-election:master-only';

/** Injection token of the static facts of one registration (its DI name and whether it is the default). */
export const MASTER_ELECTION_REGISTRATION = Symbol('MASTER_ELECTION_REGISTRATION');

/** Injection token of the {@link MasterElectionService} of one registration, inside its module. */
export const MASTER_ELECTION_INSTANCE = Symbol('MASTER_ELECTION_INSTANCE');

/** Stands for "the default registration" where an election name may be given. */
export const DEFAULT_ELECTION: unique symbol = Symbol('default election');

/** The key of a registration: an election name, or {@link DEFAULT_ELECTION}. */
export type ElectionKey = string | typeof DEFAULT_ELECTION;

/** Logger context of everything the integration logs. */
export const LOGGER_CONTEXT = 'MasterElection';

/** First delay between connection attempts with `onUnreachable: 'retry'`. */
export const RETRY_INITIAL_DELAY_MS = 100;
/** Largest delay between connection attempts with `onUnreachable: 'retry'`. */
export const RETRY_MAX_DELAY_MS = 5_000;

/**
 * The injection token of the {@link MasterElectionService} of the election
 * registered under `name`. `@InjectMasterElection(name)` is short for
 * `@Inject(getMasterElectionToken(name))`.
 */
export function getMasterElectionToken(name: string): string {
  return `MasterElectionService(${name})`;
}
