/**
 * `MasterElectionClient`: the election engine ({@link MasterElection}) with
 * the Go package's entry point, `create(doozerClient, name, address,
 * participating, receiver, options)`, which runs it on a
 * {@link DoozerElectionStore} over the given client.
 */
import type { DoozerClient } from '../../doozer/client.js';
import { MasterElection, type MasterElectionOpenOptions } from '../../election/index.js';
import type { ElectionStore } from '../../election/port.js';
import type { MasterElectionEventReceiver, MasterElectionOptions } from '../../election/types.js';
import { DoozerElectionStore } from './store.js';

/**
 * A master election: the Go package's `MasterElectionClient`, plus leases (a
 * dead or frozen master is replaced), resignation, fencing tokens and a local
 * step-down deadline. On Doozer (`create`) it keeps the Go package's election
 * file `/ns/service/master/<name>` byte for byte, with a lease beside it;
 * `open` runs it on any other {@link ElectionStore}. See
 * docs/election-protocol.md and docs/backends/doozer.md.
 */
export class MasterElectionClient extends MasterElection {
  /**
   * Creates and starts an election client on Doozer: reads the current
   * master (calling `becomeSlave` when there is one), then follows the
   * election, running one when there is no master and `participating` is true.
   *
   * @param client a connected Doozer client; the election never closes it.
   * @param name the election's name, one Doozer path component.
   * @param address the `host:port` this process advertises as master.
   * @param participating false for a passive client that only follows (and may force elections).
   * @param receiver notified of every change, in order.
   * @throws ElectionConfigError for a bad name, address or timing option.
   * @throws DoozerPermissionError (or another Doozer error) when the first read
   *   of the election fails; later failures go to the receiver instead.
   */
  static async create(
    client: DoozerClient,
    name: string,
    address: string,
    participating: boolean,
    receiver: MasterElectionEventReceiver,
    options?: MasterElectionOptions,
  ): Promise<MasterElectionClient> {
    const store = new DoozerElectionStore(client);
    const election = await MasterElectionClient.open(store, {
      ...options,
      name,
      address,
      participating,
      receiver,
    });
    await election.start();
    return election;
  }

  /**
   * Opens an election on any storage backend; call `start()` to run it.
   * @throws ElectionConfigError for a bad name, address or timing option.
   */
  static override async open(
    store: ElectionStore,
    options: MasterElectionOpenOptions,
  ): Promise<MasterElectionClient> {
    return new MasterElectionClient(await MasterElection.prepare(store, options));
  }
}
