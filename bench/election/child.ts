/**
 * One participant in its own OS process, for the crash-failover figure.
 * Prints `{"ev":"ready"}` once started, `{"ev":"master"}` on each
 * becomeMaster, `{"ev":"slave","master":...}` on each becomeSlave, and
 * `{"ev":"resigning"}` just before it obeys `resign` on stdin; each line has
 * `t` (CLOCK_MONOTONIC ms, comparable with the parent's). SIGTERM closes.
 *
 *   node child.js <doozer|etcd|postgres> <uri> <name> <address> <leaseMs> <renewDeadlineMs> <retryPeriodMs>
 */
import { createInterface } from 'node:readline';
import { MasterElection, systemClock } from '../../lib/election/index.js';
import { BACKENDS, connectStore, type BackendName } from './connect.js';

const [backend, uri, name, address, lease, renew, retry] = process.argv.slice(2);
const emit = (ev: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ ...ev, t: systemClock.now() })}\n`);
};

if (!BACKENDS.includes(backend as BackendName)) {
  process.stderr.write(`child: unknown backend ${String(backend)}\n`);
  process.exit(2);
}
const connection = await connectStore(backend as BackendName, uri!);
const election = await MasterElection.open(connection.store, {
  name: name!,
  address: address!,
  leaseMs: Number(lease),
  renewDeadlineMs: Number(renew),
  retryPeriodMs: Number(retry),
  logger: { log: () => {}, warn: () => {}, error: (m: string) => process.stderr.write(`${m}\n`) },
  receiver: {
    becomeMaster: () => emit({ ev: 'master' }),
    becomeSlave: (master: string) => emit({ ev: 'slave', master }),
  },
});
await election.start();
emit({ ev: 'ready' });
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'resign') return;
  emit({ ev: 'resigning' });
  void election.resign();
});
process.on('SIGTERM', () => {
  void election
    .close()
    .then(() => connection.close())
    .then(() => process.exit(0));
});
