/**
 * The live view following a real store: the timeline of real elections
 * (the engine's own writes), and what it does when it loses touch with the
 * store (a dropped connection, a server restarted empty).
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { DoozerClient } from '../../lib/doozer/index.js';
import { electionPath, leasePath } from '../../lib/election/index.js';
import { MasterElectionClient } from '../../lib/backends/doozer/index.js';
import type { ElectionView, LiveView } from '../../lib/live-view/index.js';
import { waitFor } from '../support/wait.js';
import { SseReader, startStack } from './helpers.js';

const TIMING = { leaseMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 200 };
const NAME = 'jobs';

/** A participant (or a passive follower) on its own client, closed when the test finishes. */
async function join(
  uri: string,
  address: string,
  participating = true,
): Promise<MasterElectionClient> {
  const client = await DoozerClient.connect(uri);
  const election = await MasterElectionClient.create(
    client,
    NAME,
    address,
    participating,
    { becomeMaster() {}, becomeSlave() {}, electionError() {}, electionFatal() {} },
    TIMING,
  );
  onTestFinished(async () => {
    await election.close();
    await client.close();
  });
  return election;
}

function election(view: LiveView, name = NAME): ElectionView | undefined {
  return view.snapshot().elections.find((e) => e.name === name);
}

/** The timeline as `master:reason` and `gap` strings. */
function shape(view: LiveView, name = NAME): string[] {
  return (election(view, name)?.timeline ?? []).map((t) =>
    t.kind === 'gap' ? 'gap' : `${t.master}:${t.reason ?? 'open'}`,
  );
}

describe('live view of real elections', () => {
  it('sees a resign as released and a forced election as forced', async () => {
    const { server, view, client } = await startStack();
    // A released lease: the first election need not wait out a missing one.
    await client.set(
      leasePath(NAME),
      0,
      JSON.stringify({ v: 1, state: 'released', term: 0, holder: '', id: 'seed', seq: 0 }),
    );
    const a = await join(server.uri, '127.0.0.1:7201');
    // The election file comes first, then the lease (docs/election-protocol.md).
    await waitFor(
      () =>
        election(view)?.lease?.state === 'held' &&
        election(view)?.lease?.holder === '127.0.0.1:7201',
      'a to hold the lease',
    );
    expect(election(view)!.master).toEqual({
      address: '127.0.0.1:7201',
      token: election(view)!.lease!.term,
    });

    await join(server.uri, '127.0.0.1:7202');
    await a.resign();
    await waitFor(() => election(view)?.master?.address === '127.0.0.1:7202', 'b to take over');
    expect(shape(view)).toEqual(['gap', '127.0.0.1:7201:released', 'gap', '127.0.0.1:7202:open']);

    const passive = await join(server.uri, '127.0.0.1:7203', false);
    await passive.forceMasterElection();
    await waitFor(
      () => shape(view).length === 6 && election(view)!.master !== null,
      'the next term',
    );
    expect(shape(view).slice(0, 5)).toEqual([
      'gap',
      '127.0.0.1:7201:released',
      'gap',
      '127.0.0.1:7202:forced',
      'gap',
    ]);
  });

  it('tells the pages when it loses the store, and reads it again once back', async () => {
    const { server, view, client } = await startStack();
    // Push the rev well past what a fresh server reaches while this test runs
    // (its own /ctl heartbeats), so "revs start over" is seen on a loaded machine too.
    for (let i = 0; i < 200; i++) await client.set(`/filler/${i}`, 0, 'x');
    const rev = await client.set(electionPath('go'), 0, 'go-master:1');
    const sse = await SseReader.open(view.url);
    await sse.snapshot();
    server.dropConnections();
    await sse.next(
      'status',
      (d) => (d as { connected: boolean }).connected === false,
      'the status',
    );
    await sse.next('snapshot', (d) => (d as { connected: boolean }).connected, 'a fresh snapshot');
    expect(election(view, 'go')!.timeline).toMatchObject([
      { kind: 'term', token: rev, master: 'go-master:1' },
    ]);

    // A server restarted empty: revs start over, the election file is gone.
    const snapshots = sse.events.filter((e) => e.event === 'snapshot').length;
    await server.restart({ keepState: false });
    await waitFor(
      () => sse.events.filter((e) => e.event === 'snapshot').length > snapshots,
      'the snapshot after the restart',
    );
    expect(shape(view, 'go')).toEqual(['go-master:1:unobserved', 'gap']);
    expect(view.snapshot().rev).toBeLessThan(rev);
    // It follows the new store.
    await client.set('/after/restart', 0, 'yes');
    await sse.update(
      (u) => u.files.some((f) => f.path === '/after/restart'),
      'a change after the restart',
    );
  });
});
