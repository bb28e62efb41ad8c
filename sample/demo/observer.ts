import {
  MasterElection,
  systemClock,
  type LockCapabilities,
  type MasterElectionOptions,
} from 'nestjs-master-election';
import { map, type Observable } from 'rxjs';
import type { SampleStoreTarget } from '../src/config.js';
import { connectStore, type StoreConnection } from '../src/store-connection.js';
import type { DemoTimings } from './timings.js';

/** The master as the observer saw it, from a given moment on. */
export interface MasterSighting {
  /** The master's address, `''` while there is none. */
  readonly master: string;
  /** Its term's fencing token, 0 while there is none. */
  readonly term: number;
  /** `performance.now()` when the observer saw this. */
  readonly at: number;
}

/** What the store holds for the election before the demo starts. */
export type LeaseOnStart =
  | { readonly kind: 'missing' }
  | { readonly kind: 'released' }
  | { readonly kind: 'held'; readonly holder: string };

/**
 * A passive participant (`participating: false`): it never runs for master,
 * but follows the election the way the replicas do (a WAIT stream on Doozer,
 * a watch on etcd, LISTEN/NOTIFY on PostgreSQL) and reports every change of
 * master the moment the store shows it, so the demo can time failover and
 * handover from outside the replicas.
 */
export class MasterObserver {
  /** The current master, then every change. */
  readonly masters$: Observable<MasterSighting>;
  /** Every master seen, by term. */
  readonly terms = new Map<number, string>();

  private constructor(
    private readonly connection: StoreConnection,
    private readonly election: MasterElection,
  ) {
    this.masters$ = election.state$.pipe(
      map(({ master, term }) => ({ master, term, at: performance.now() })),
    );
    this.masters$.subscribe(({ master, term }) => {
      if (master !== '') this.terms.set(term, master);
    });
  }

  /**
   * Connects to the store and starts following election `name`; also says
   * what the store held before, and what the store's locks can prove.
   */
  static async start(
    target: SampleStoreTarget,
    name: string,
    timings: DemoTimings,
  ): Promise<{ observer: MasterObserver; lease: LeaseOnStart; capabilities: LockCapabilities }> {
    const connection = await connectStore(target);
    try {
      const address = `demo-observer:${process.pid}`; // never written: a passive client only reads
      const { lease, capabilities } = await readLease(connection, name, address, timings);
      const receiver = { becomeMaster: () => undefined, becomeSlave: () => undefined };
      const options: MasterElectionOptions = timings;
      const election = await MasterElection.open(connection.store, {
        ...options,
        name,
        address,
        participating: false,
        receiver,
      });
      try {
        await election.start();
      } catch (err) {
        await election.close().catch(() => undefined);
        throw err;
      }
      return { observer: new MasterObserver(connection, election), lease, capabilities };
    } catch (err) {
      await connection.close();
      throw err;
    }
  }

  /** The master as last seen. */
  get current(): { master: string; term: number } {
    const { master, term } = this.election.state;
    return { master, term };
  }

  /** Stops following and disconnects. */
  async close(): Promise<void> {
    await this.election.close();
    await this.connection.close();
  }
}

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };

/** One read of the election's record, by a passive lock of its own. */
async function readLease(
  connection: StoreConnection,
  name: string,
  address: string,
  timing: DemoTimings,
): Promise<{ lease: LeaseOnStart; capabilities: LockCapabilities }> {
  const lock = await connection.store.openLock({
    name,
    address,
    participating: false,
    timing,
    clock: systemClock,
    logger: quiet,
  });
  try {
    const { record } = await lock.read({ timeoutMs: 10_000 });
    const lease: LeaseOnStart =
      record === null
        ? { kind: 'missing' }
        : record.state === 'released'
          ? { kind: 'released' }
          : { kind: 'held', holder: record.holder };
    return { lease, capabilities: lock.capabilities };
  } finally {
    await lock.close();
  }
}
