/**
 * The backend of one `elect-run-command` run: Doozer (the default), etcd
 * (`--etcd-uri`) or PostgreSQL (`--postgres-uri`), connected, and joining
 * the election on it.
 */
import { DoozerClient } from '../doozer/client.js';
import { MasterElection, type MasterElectionOpenOptions } from '../election/index.js';
import { MasterElectionClient } from '../backends/doozer/index.js';
import { openUriStore } from '../backends/store-uri.js';
import type { CliLogger } from './logger.js';
import type { CliOptions } from './options.js';
import type { StoreUri } from './store-uri.js';

/** What the election needs besides the backend; the receiver is required. */
export type JoinOptions = MasterElectionOpenOptions &
  Required<Pick<MasterElectionOpenOptions, 'receiver' | 'participating'>>;

/** A connected backend. */
export interface BackendConnection {
  /** Where it is, without secrets (for log lines). */
  readonly where: string;
  /** Opens and starts the election; rejects (the election stopped) when its first read fails. */
  join(options: JoinOptions): Promise<MasterElection>;
  /** Closes the connection (after the election was closed). */
  close(): Promise<void>;
}

/** Where the chosen backend is, without secrets. */
export function backendWhere(opts: Pick<CliOptions, 'store' | 'doozerUri'>): string {
  return opts.store?.shown ?? opts.doozerUri?.toString() ?? '(no backend)';
}

/**
 * Connects to the backend chosen on the command line.
 * @throws the backend's error (a missing driver names the package to install).
 */
export async function connectBackend(
  opts: Pick<CliOptions, 'store' | 'doozerUri' | 'doozerBootUri'>,
  log: CliLogger,
): Promise<BackendConnection> {
  if (opts.store !== undefined) return connectStore(opts.store);
  const uri = opts.doozerUri;
  if (uri === undefined) throw new TypeError('connectBackend: no backend chosen');
  const client = await DoozerClient.connect(uri, { bootUri: opts.doozerBootUri, logger: log });
  return {
    where: uri.toString(),
    join: ({ name, address, participating, receiver, ...rest }) =>
      MasterElectionClient.create(client, name, address, participating, receiver, rest),
    close: () => client.close(),
  };
}

async function connectStore(uri: StoreUri): Promise<BackendConnection> {
  const store = await openUriStore(uri.kind, uri.reveal());
  return {
    where: uri.shown,
    join: async (options) => {
      const election = await MasterElection.open(store, options);
      try {
        await election.start();
      } catch (e) {
        await election.close().catch(() => {});
        throw e;
      }
      return election;
    },
    close: () => store.close(),
  };
}
