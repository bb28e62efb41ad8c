/** In-process participants, each with its own connection to the store, as separate replicas would have. */
import {
  MasterElection,
  type MasterElectionOptions,
  type MasterTerm,
} from '../../lib/election/index.js';
import { countingStore, PortCounts } from './counting-store.js';
import type { Connection } from './connect.js';
import type { BenchBackend, BenchServer } from './servers.js';
import { now, round, until } from './stats.js';

const silent = { log: () => {}, warn: () => {}, error: () => {} };

export class Participant {
  terms = 0;
  /** Time of the first becomeMaster (NaN before). */
  firstElectedAt = NaN;
  private masterWaiters: ((t: number) => void)[] = [];

  private constructor(
    readonly election: MasterElection,
    readonly address: string,
    private readonly connection: Connection,
  ) {}

  /** Connects, opens the election on a counting store and starts it. */
  static async start(
    backend: BenchBackend,
    server: BenchServer,
    name: string,
    address: string,
    options: MasterElectionOptions,
    counts: PortCounts,
  ): Promise<Participant> {
    const connection = await backend.connect(server.uri);
    const self: { p?: Participant } = {};
    const election = await MasterElection.open(countingStore(connection.store, counts), {
      logger: silent,
      ...options,
      name,
      address,
      receiver: {
        becomeMaster: (_term: MasterTerm) => {
          self.p?.elected(now());
        },
        becomeSlave: () => {},
      },
    });
    const p = new Participant(election, address, connection);
    self.p = p;
    await election.start();
    return p;
  }

  /** Resolves with the time of this participant's next becomeMaster. */
  nextMaster(): Promise<number> {
    return new Promise((resolve) => this.masterWaiters.push(resolve));
  }

  /** Queries this participant's connection sent, where the backend counts them. */
  queries(): number {
    return this.connection.queries?.() ?? 0;
  }

  async stop(): Promise<void> {
    await this.election.close();
    await this.connection.close();
  }

  private elected(t: number): void {
    if (this.terms++ === 0) this.firstElectedAt = t;
    for (const w of this.masterWaiters.splice(0)) w(t);
  }
}

/** A group of participants of one election, and the port operations they made. */
export interface Fleet {
  participants: Participant[];
  counts: PortCounts;
  /** Time from the first start to the first becomeMaster. */
  firstMasterMs: number;
}

/** Starts `count` participants at once and waits for the first master. */
export async function startFleet(
  backend: BenchBackend,
  server: BenchServer,
  name: string,
  count: number,
  options: MasterElectionOptions,
  counts = new PortCounts(),
): Promise<Fleet> {
  const start = now();
  let electedAt!: (t: number) => void;
  const elected = new Promise<number>((resolve) => (electedAt = resolve));
  const participants = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const p = await Participant.start(
        backend,
        server,
        name,
        `127.0.0.1:${10_000 + i}`,
        options,
        counts,
      );
      if (p.terms > 0) electedAt(p.firstElectedAt);
      void p.nextMaster().then(electedAt);
      return p;
    }),
  );
  const t = await Promise.race([
    elected,
    new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`${backend.name}: no master among ${count} within 60 s`)),
        60_000,
      ).unref(),
    ),
  ]);
  return { participants, counts, firstMasterMs: round(t - start) };
}

export async function stopFleet(fleet: Fleet, server: BenchServer): Promise<void> {
  await Promise.all(fleet.participants.map((p) => p.stop()));
  await server.settle();
}

export const masterOf = (fleet: Fleet): Participant | undefined =>
  fleet.participants.find((p) => p.election.isMaster());

/** Waits until every participant names `master` as the current master and has nothing in flight. */
export async function allFollow(fleet: Fleet, master: Participant, what: string): Promise<void> {
  await until(
    () => fleet.participants.every((p) => p.election.getCurrentMaster() === master.address),
    what,
  );
  await Promise.all(fleet.participants.map((p) => p.election.whenIdle()));
}
