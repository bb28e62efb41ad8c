/** Every message the Nest integration logs or throws, in one place. */
import type { ElectionEvent } from './master-election-metadata.accessor.js';

/** The decorator that subscribes to an event, for messages. */
export const DECORATOR_OF: Readonly<Record<ElectionEvent, string>> = {
  becomeMaster: '@OnBecomeMaster',
  becomeSlave: '@OnBecomeSlave',
  electionError: '@OnElectionError',
  electionFatal: '@OnElectionFatal',
};

const describeName = (name: string | undefined): string =>
  name === undefined ? 'the default election' : `election "${name}"`;

export const NON_STATIC_PROVIDER = (
  decorator: string,
  label: string,
  name: string | undefined,
): string =>
  `Cannot register ${decorator} handler "${label}" for ${describeName(name)}: its provider is request-scoped or transient (or depends on one). Election events are delivered only to static providers and controllers; the handler is skipped.`;

export const NON_STATIC_MASTER_ONLY = (label: string, name: string | undefined): string =>
  `@MasterOnly method "${label}" (${describeName(name)}) is on a request-scoped or transient provider (or one that depends on one): it cannot be bound to its election, so its calls are always skipped.`;

export const UNKNOWN_ELECTION = (decorator: string, label: string, name: string): string =>
  `${decorator}("${name}") on "${label}" names no election registered with MasterElectionModule in this application; it will never fire.`;

export const NO_DEFAULT_ELECTION = (decorator: string, label: string): string =>
  `${decorator}() on "${label}" has no election name, but no MasterElectionModule registration of this application is the default one (isDefault); it will never fire.`;

export const HANDLER_FAILED = (decorator: string, label: string, name: string): string =>
  `${decorator} handler "${label}" of election "${name}" failed`;

export const BECOME_MASTER_FAILED = (name: string, count: number): string =>
  `election "${name}": ${count} @OnBecomeMaster handlers failed; the term is given up`;

export const MASTER_ONLY_SKIPPED = (label: string, name: string | undefined): string =>
  `${label} skipped: this process is not the master of ${describeName(name)}`;

export const DUPLICATE_ELECTION = (name: string): string =>
  `MasterElectionModule: election "${name}" is registered more than once in this application; register each election name once`;

export const DUPLICATE_DEFAULT = (first: string, second: string): string =>
  `MasterElectionModule: elections "${first}" and "${second}" are both the default registration; give all but one of them \`isDefault: false\``;

export const STATIC_NAME_MISMATCH = (staticName: string, name: unknown): string =>
  `forRootAsync() was given name "${staticName}" but its options name ${JSON.stringify(name)}; they must be the same`;

export const CLUSTER_NEEDS_BOOT_URI = (cluster: string): string =>
  `required: \`uri\` names cluster cn=${cluster} without ca= addresses, so its members are looked up through \`bootUri\` (a Doozer URI of the cluster); give \`bootUri\`, or ca= addresses in \`uri\``;

export const BAD_URI = (name: string, uri: string, reason: string): string =>
  `election ${name} stopped: the Doozer URI ${uri} cannot be used (${reason}); retrying cannot help`;

export const ASYNC_NEEDS_NAME =
  'MasterElectionModule.forRootAsync() with `isDefault: false` needs a static `name` (the election name), or its service could not be injected';

export const UNKNOWN_OPTION = (name: string, option: string): string =>
  `election "${name}": unknown MasterElectionModule option "${option}" is ignored`;

export const RETRYING = (
  name: string,
  uri: string,
  reason: string,
  delayMs: number,
  backend = 'Doozer',
): string =>
  `election "${name}": ${backend} at ${uri} is unreachable (${reason}); retrying in ${delayMs} ms`;

export const ACCESS_REFUSED = (name: string, uri: string, reason: string): string =>
  `election ${name} stopped: Doozer at ${uri} refused access (${reason}); check the secret (sk=) of the URI`;

export const START_RETRYING = (name: string, reason: string, delayMs: number): string =>
  `election "${name}": could not start (${reason}); retrying in ${delayMs} ms`;

export const CONNECTED = (name: string, uri: string, backend = 'Doozer'): string =>
  `election "${name}": connected to ${backend} at ${uri}`;

export const RESIGN_FAILED = (name: string, reason: string): string =>
  `election "${name}": resigning at shutdown failed: ${reason}`;

export const RESIGN_SLOW = (name: string, ms: number): string =>
  `election "${name}": resigning at shutdown did not finish within ${ms} ms (is Doozer reachable?); the term has ended, others take over when the lease runs out`;

export const CLOSE_FAILED = (name: string, reason: string): string =>
  `election "${name}": closing at shutdown failed: ${reason}`;

export const NOT_RUNNING = (name: string, what: string): string =>
  `election "${name}" is not running (${what}): it starts when the application bootstraps and stops when it shuts down`;

export const HANDLER_LATE_DONE = (label: string, name: string, lateMs: number): string =>
  `@OnBecomeMaster handler "${label}" of election "${name}" completed ${lateMs} ms after its bound (becomeMasterTimeoutMs); its term had been given up`;

export const HANDLER_LATE_FAILED = (
  label: string,
  name: string,
  lateMs: number,
  reason: string,
): string =>
  `@OnBecomeMaster handler "${label}" of election "${name}" failed ${lateMs} ms after its bound (becomeMasterTimeoutMs): ${reason}`;

export const HANDLER_OVERDUE = (labels: readonly string[], name: string, ms: number): string =>
  `@OnBecomeMaster handler ${labels.map((l) => `"${l}"`).join(', ')} of election "${name}" still running ${ms} ms past becomeMasterTimeoutMs; this process does not take part until it settles`;

export const HANDLER_FAILED_AGAIN = (
  decorator: string,
  label: string,
  name: string,
  count: number,
): string =>
  `${decorator} handler "${label}" of election "${name}" failed again (${count} terms in a row, same error)`;

export const SITTING_OUT = (name: string, count: number, delayMs: number): string =>
  `election "${name}": @OnBecomeMaster failed ${count === 1 ? 'once' : `${count} terms in a row`}; this process sits out the election for ${delayMs} ms (failureBackoffMs), so another replica can take over`;

export const REJOINING = (name: string): string =>
  `election "${name}": taking part in the election again after a failed term`;

export const SWAP_FAILED = (name: string, reason: string, delayMs: number): string =>
  `election "${name}": could not restart the election after a failed term (${reason}); retrying in ${delayMs} ms`;

export const DRAINING = (name: string, token: number, labels: readonly string[]): string =>
  `election "${name}": term ${token} ended; waiting for ${labels.length} running @MasterOnly call(s) (${[...new Set(labels)].join(', ')}) before releasing it`;

export const DRAINED = (name: string, token: number, ms: number): string =>
  `election "${name}": running @MasterOnly calls of term ${token} finished after ${ms} ms; releasing the term`;

export const DRAIN_TIMED_OUT = (
  name: string,
  token: number,
  ms: number,
  labels: readonly string[],
): string =>
  `election "${name}": @MasterOnly call(s) ${[...new Set(labels)].join(', ')} still running ${ms} ms (drainTimeoutMs) after term ${token} ended; releasing it anyway`;

export const SKIPPED_FOR_TERM = (
  label: string,
  name: string,
  master: string,
  term: number,
): string =>
  `${label} skipped: this process is not the master of election "${name}" (${master === '' ? 'no master known' : `master ${master}, term ${term}`}); further skips of this term are not logged`;

export const NO_ANSWER = (reason: string): string =>
  `it accepted the connection but did not answer (${reason}); is this a Doozer server, and is it overloaded?`;

export const NO_SHUTDOWN_HOOKS = (names: readonly string[]): string =>
  `${names.map((n) => `election "${n}"`).join(', ')}: nothing in this process handles SIGTERM, so on SIGTERM this replica exits without resigning and the others wait out its lease (leaseMs) before one takes over. Call app.enableShutdownHooks() (see docs/nest-module.md, "Shutdown and handover").`;
