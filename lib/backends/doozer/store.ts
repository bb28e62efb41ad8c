/** The Doozer election store: one Doozer client shared by every election of a process. */
import { inspect } from 'node:util';
import { ElectionConfigError } from '../../election/errors.js';
import type { ElectionLock, ElectionStore, LockRequest } from '../../election/port.js';
import { checkAddress, checkElectionName } from './layout.js';
import { DoozerLock } from './lock.js';
import type { DoozerLockClient } from './session.js';

/**
 * Elections on a Doozer lock server, wire-compatible with the Go
 * `masterelection` package: the master's `host:port` in
 * `/ns/service/master/<name>`, exactly as the Go package writes it, and a
 * lease beside it in `/ns/service/master-lease/<name>`. See
 * docs/backends/doozer.md.
 *
 * ```ts
 * const client = await DoozerClient.connect('doozer:?ca=127.0.0.1:8046');
 * const store = new DoozerElectionStore(client);
 * ```
 *
 * The store never closes the client it was given; close it after the
 * elections that use it.
 */
export class DoozerElectionStore implements ElectionStore {
  readonly backend = 'doozer';

  /** @param client a Doozer client (connected or reconnecting); shared, never closed by the store. */
  constructor(private readonly client: DoozerLockClient) {
    if (typeof client !== 'object' || client === null || typeof client.wait !== 'function') {
      throw new ElectionConfigError(
        'client',
        'expected a DoozerClient from nestjs-master-election/doozer',
      );
    }
  }

  /**
   * Opens one election for one participant. Nothing is written until the
   * engine creates a term.
   *
   * @throws ElectionConfigError `name` when the name is not one Doozer path
   *   component (letters, digits, `.`, `-`), `address` when the address is
   *   empty or holds white space or control characters.
   */
  async openLock(request: LockRequest): Promise<ElectionLock> {
    checkElectionName(request.name);
    checkAddress(request.address);
    if (typeof request.participating !== 'boolean') {
      throw new ElectionConfigError('participating', 'must be true or false');
    }
    await Promise.resolve();
    return new DoozerLock(this.client, request);
  }

  /** The server's redacted URI (`sk=***`). */
  toString(): string {
    return `doozer store at ${this.client.uri.toString()}`;
  }

  [inspect.custom](): string {
    return `DoozerElectionStore(${this.toString()})`;
  }
}
