import {
  MasterElectionClient,
  leasePath,
  type LeaseRecord,
  type MasterElectionOptions,
} from 'nestjs-master-election';
import { DoozerClient } from 'nestjs-master-election/doozer';
import { map, type Observable } from 'rxjs';

/** The master as the observer saw it, from a given moment on. */
export interface MasterSighting {
  /** The master's address, `''` while there is none. */
  readonly master: string;
  /** Its term's fencing token, 0 while there is none. */
  readonly term: number;
  /** `performance.now()` when the observer saw this. */
  readonly at: number;
}

/** What the lease file says before the demo starts. */
export type LeaseOnStart =
  | { readonly kind: 'missing' }
  | { readonly kind: 'released' }
  | { readonly kind: 'held'; readonly holder: string };

/**
 * A passive participant (`participating: false`): it never runs for master,
 * but follows the election through the same WAIT stream as the replicas and
 * reports every change of master the moment Doozer shows it, so the demo can
 * time failover and handover from outside the replicas.
 */
export class MasterObserver {
  /** The current master, then every change. */
  readonly masters$: Observable<MasterSighting>;
  /** Every master seen, by term. */
  readonly terms = new Map<number, string>();

  private constructor(
    private readonly client: DoozerClient,
    private readonly election: MasterElectionClient,
  ) {
    this.masters$ = election.state$.pipe(
      map(({ master, term }) => ({ master, term, at: performance.now() })),
    );
    this.masters$.subscribe(({ master, term }) => {
      if (master !== '') this.terms.set(term, master);
    });
  }

  /** Connects to Doozer and starts following election `name`. */
  static async start(
    uri: string,
    bootUri: string | undefined,
    name: string,
    timings: MasterElectionOptions,
  ): Promise<{ observer: MasterObserver; lease: LeaseOnStart }> {
    const client = await DoozerClient.connect(uri, bootUri === undefined ? {} : { bootUri });
    try {
      const lease = await readLease(client, name);
      const receiver = { becomeMaster: () => undefined, becomeSlave: () => undefined };
      const election = await MasterElectionClient.create(
        client,
        name,
        `demo-observer:${process.pid}`, // never written: a passive client only reads
        false,
        receiver,
        timings,
      );
      return { observer: new MasterObserver(client, election), lease };
    } catch (err) {
      await client.close();
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
    await this.client.close();
  }
}

async function readLease(client: DoozerClient, name: string): Promise<LeaseOnStart> {
  const file = await client.get(leasePath(name));
  if (file.rev === 0) return { kind: 'missing' };
  try {
    const record = JSON.parse(file.text) as Partial<LeaseRecord>;
    if (record.state === 'held') return { kind: 'held', holder: String(record.holder) };
  } catch {
    // unreadable: treated like a missing lease by the election
    return { kind: 'missing' };
  }
  return { kind: 'released' };
}
