import { hostname } from 'node:os';
import type { LoggerService } from '@nestjs/common';
import { durationProblem } from '../shared/duration.js';
import {
  DoozerUriError,
  parseDoozerUri,
  type DoozerClient,
  type DoozerUri,
} from '../doozer/index.js';
import {
  ElectionConfigError,
  validateAddress,
  validateElectionName,
  type ElectionStore,
  type MasterElectionOptions,
} from '../election/index.js';
import { resolveElectionOptions } from '../election/options.js';
import {
  parseStoreUri,
  storeSchemeOf,
  type ParsedStoreUri,
  type StoreScheme,
} from '../backends/store-uri.js';
import type {
  MasterElectionModuleOptions,
  MasterElectionStoreOption,
  OnUnreachable,
} from './master-election.interfaces.js';
import { LOG_LEVELS, isLogLevel, type MasterElectionLogLevel } from './master-election.logger.js';
import { CLUSTER_NEEDS_BOOT_URI, STATIC_NAME_MISMATCH } from './master-election.messages.js';

/** Module options checked, with their defaults applied. */
export interface ResolvedModuleOptions {
  readonly name: string;
  readonly address: string;
  readonly participating: boolean;
  readonly uri: string | undefined;
  /** The backend chosen by the scheme of `uri` (undefined with `client` or `store`). */
  readonly scheme: StoreScheme | undefined;
  /** An etcd or PostgreSQL `uri`, checked, with its shown form and secrets. */
  readonly storeUri: ParsedStoreUri | undefined;
  readonly client: DoozerClient | undefined;
  /** The `store` option (a store or a factory of one). */
  readonly store: MasterElectionStoreOption | undefined;
  readonly bootUri: string | undefined;
  readonly connectTimeoutMs: number | undefined;
  readonly onUnreachable: OnUnreachable;
  readonly forceElectionOnStart: boolean;
  /** The engine's timing options (without logger and clock). */
  readonly election: MasterElectionOptions;
  /** `renewDeadlineMs` with its default applied. */
  readonly renewDeadlineMs: number;
  readonly becomeMasterTimeoutMs: number;
  readonly failureBackoffMs: number;
  readonly failureBackoffMaxMs: number;
  readonly drainTimeoutMs: number;
  readonly logger: LoggerService | undefined;
  readonly logLevel: MasterElectionLogLevel;
  /** Option keys that are not options (typos), to warn about. */
  readonly unknownKeys: readonly string[];
}

const KNOWN_KEYS: ReadonlySet<string> = new Set<keyof MasterElectionModuleOptions>([
  'uri',
  'client',
  'store',
  'bootUri',
  'name',
  'address',
  'participating',
  'leaseMs',
  'renewDeadlineMs',
  'retryPeriodMs',
  'electionJitterMs',
  'respectLeaselessMaster',
  'clock',
  'beforeRelease',
  'forceElectionOnStart',
  'connectTimeoutMs',
  'onUnreachable',
  'becomeMasterTimeoutMs',
  'failureBackoffMs',
  'failureBackoffMaxMs',
  'drainTimeoutMs',
  'logger',
  'logLevel',
]);

/** The longest delay a timer can hold. */
const MAX_TIMER_MS = 0x7fffffff;

/** A duration option: a finite number of milliseconds, at least `min`, at most what a timer holds. */
function duration(option: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > MAX_TIMER_MS) {
    throw new ElectionConfigError(
      option,
      `must be a finite number of milliseconds from ${min} to ${MAX_TIMER_MS} (got ${JSON.stringify(value) ?? typeof value})`,
    );
  }
  return value;
}

const isLoggerService = (value: unknown): value is LoggerService =>
  typeof value === 'object' &&
  value !== null &&
  ['log', 'warn', 'error'].every(
    (m) => typeof (value as Record<string, unknown>)[m] === 'function',
  );

const optionalBoolean = (option: string, value: unknown, fallback: boolean): boolean => {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new ElectionConfigError(option, `must be true or false (got ${JSON.stringify(value)})`);
  }
  return value;
};

const isElectionStore = (value: unknown): value is ElectionStore =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as { openLock?: unknown }).openLock === 'function';

const isDoozerClient = (value: unknown): value is DoozerClient =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as { close?: unknown }).close === 'function' &&
  'state' in value;

/** Parses a URI option; its errors never contain the secret. */
function checkUri(option: string, uri: unknown): DoozerUri {
  try {
    return parseDoozerUri(uri as string);
  } catch (err) {
    if (!(err instanceof DoozerUriError)) throw err;
    throw new ElectionConfigError(option, `invalid Doozer URI: ${err.message}`);
  }
}

/** The default advertised address: `${os.hostname()}:${process.pid}`. */
export function defaultAddress(): string {
  return `${hostname()}:${process.pid}`;
}

/**
 * Checks the options of one registration and applies the defaults. Throws
 * an `ElectionConfigError` naming the option at fault, including the
 * engine's timing checks, so bad options fail the boot before anything
 * connects.
 */
export function resolveModuleOptions(
  options: MasterElectionModuleOptions | undefined,
  staticName: string | undefined,
): ResolvedModuleOptions {
  if (typeof options !== 'object' || options === null) {
    throw new ElectionConfigError(
      'options',
      `MasterElectionModule needs an options object (got ${String(options)})`,
    );
  }
  const raw = options as MasterElectionModuleOptions & Record<string, unknown>;
  const givenName = raw.name ?? staticName;
  if (staticName !== undefined && givenName !== staticName) {
    throw new ElectionConfigError('name', STATIC_NAME_MISMATCH(staticName, raw.name));
  }
  const name = validateElectionName(givenName);

  const { uri, client, store } = raw;
  const given = (['uri', 'client', 'store'] as const).filter((k) => raw[k] !== undefined);
  if (given.length !== 1) {
    throw new ElectionConfigError(
      given[1] ?? 'uri',
      `give exactly one of \`uri\` (doozer:, etcd:// or postgres://), \`client\` (a connected DoozerClient) and \`store\` (an ElectionStore or a function returning one)${given.length > 1 ? ` (got ${given.join(', ')})` : ''}`,
    );
  }
  if (store !== undefined && typeof store !== 'function' && !isElectionStore(store)) {
    throw new ElectionConfigError(
      'store',
      'must be an ElectionStore (with openLock) or a function returning one',
    );
  }
  if (store !== undefined && raw.bootUri !== undefined) {
    throw new ElectionConfigError('bootUri', 'applies to `uri` only (not with `store`)');
  }
  const scheme = uri === undefined ? undefined : storeSchemeOf(uri, 'uri');
  if (scheme !== undefined && scheme !== 'doozer' && raw.bootUri !== undefined) {
    throw new ElectionConfigError('bootUri', 'applies to a doozer: `uri` only');
  }
  const storeUri =
    scheme === undefined || scheme === 'doozer' ? undefined : parseStoreUri(scheme, uri as string);
  const parsed = scheme === 'doozer' ? checkUri('uri', uri) : undefined;
  if (raw.bootUri !== undefined) checkUri('bootUri', raw.bootUri);
  // Like the client: a cn= cluster name is looked up (through bootUri) only
  // when the URI has no ca= addresses.
  if (parsed && parsed.addresses.length === 0 && raw.bootUri === undefined) {
    throw new ElectionConfigError('bootUri', CLUSTER_NEEDS_BOOT_URI(parsed.clusterName ?? ''));
  }
  if (client !== undefined && !isDoozerClient(client)) {
    throw new ElectionConfigError('client', 'must be a DoozerClient');
  }
  const address = validateAddress(raw.address ?? defaultAddress());
  const participating = optionalBoolean('participating', raw.participating, true);
  const forceElectionOnStart = optionalBoolean(
    'forceElectionOnStart',
    raw.forceElectionOnStart,
    false,
  );
  const onUnreachable = raw.onUnreachable ?? 'fail';
  if (onUnreachable !== 'fail' && onUnreachable !== 'retry') {
    throw new ElectionConfigError(
      'onUnreachable',
      `must be 'fail' or 'retry' (got ${JSON.stringify(onUnreachable)})`,
    );
  }
  const connectTimeoutMs = raw.connectTimeoutMs;
  const connectProblem =
    connectTimeoutMs === undefined ? undefined : durationProblem(connectTimeoutMs);
  if (connectProblem !== undefined) {
    throw new ElectionConfigError('connectTimeoutMs', connectProblem);
  }
  const election: MasterElectionOptions = {
    leaseMs: raw.leaseMs,
    renewDeadlineMs: raw.renewDeadlineMs,
    retryPeriodMs: raw.retryPeriodMs,
    electionJitterMs: raw.electionJitterMs,
    respectLeaselessMaster: optionalBoolean(
      'respectLeaselessMaster',
      raw.respectLeaselessMaster,
      false,
    ),
    ...(raw.clock !== undefined ? { clock: raw.clock } : {}),
    ...(raw.beforeRelease !== undefined ? { beforeRelease: raw.beforeRelease } : {}),
  };
  if (raw.beforeRelease !== undefined && typeof raw.beforeRelease !== 'function') {
    throw new ElectionConfigError('beforeRelease', 'must be a function');
  }
  // The engine's own checks, now rather than at bootstrap.
  const { renewDeadlineMs, leaseMs } = resolveElectionOptions(election);

  const becomeMasterTimeoutMs = duration(
    'becomeMasterTimeoutMs',
    raw.becomeMasterTimeoutMs,
    renewDeadlineMs,
  );
  const failureBackoffMs = duration('failureBackoffMs', raw.failureBackoffMs, 1_000);
  const failureBackoffMaxMs = duration(
    'failureBackoffMaxMs',
    raw.failureBackoffMaxMs,
    Math.max(30_000, failureBackoffMs),
  );
  if (failureBackoffMaxMs < failureBackoffMs) {
    throw new ElectionConfigError(
      'failureBackoffMaxMs',
      `must be at least failureBackoffMs (${failureBackoffMs}; got ${failureBackoffMaxMs})`,
    );
  }
  const margin = leaseMs - renewDeadlineMs;
  const drainTimeoutMs = duration('drainTimeoutMs', raw.drainTimeoutMs, margin, 0);
  if (drainTimeoutMs > margin) {
    throw new ElectionConfigError(
      'drainTimeoutMs',
      `must be at most leaseMs - renewDeadlineMs (${margin} ms; got ${drainTimeoutMs}): after that, another replica may take over anyway`,
    );
  }
  if (raw.logger !== undefined && !isLoggerService(raw.logger)) {
    throw new ElectionConfigError(
      'logger',
      'must be a Nest LoggerService (log, warn and error methods)',
    );
  }
  const logLevel = raw.logLevel ?? 'log';
  if (!isLogLevel(logLevel)) {
    throw new ElectionConfigError(
      'logLevel',
      `must be one of ${LOG_LEVELS.map((l) => `'${l}'`).join(', ')} (got ${JSON.stringify(logLevel)})`,
    );
  }

  return {
    name,
    address,
    participating,
    uri,
    scheme,
    storeUri,
    client,
    store,
    bootUri: raw.bootUri,
    connectTimeoutMs,
    onUnreachable,
    forceElectionOnStart,
    election,
    renewDeadlineMs,
    becomeMasterTimeoutMs,
    failureBackoffMs,
    failureBackoffMaxMs,
    drainTimeoutMs,
    logger: raw.logger,
    logLevel,
    unknownKeys: Object.keys(raw).filter((k) => !KNOWN_KEYS.has(k)),
  };
}
