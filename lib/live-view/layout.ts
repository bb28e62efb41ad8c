/**
 * The election layout on Doozer, as the live view reads it. This is the only
 * file of the live view that imports the election engine: the paths and the
 * lease format are the engine's, and when that module moves, only this
 * import changes.
 */
import { electionPath, leasePath, parseLease, type LeaseRecord } from '../election/lease.js';

export type { LeaseRecord };

/** `/ns/service/master/`: the directory of the election files (the Go package's). */
const ELECTION_DIR = electionPath('');
/** `/ns/service/master-lease/`: the directory of the lease files. */
const LEASE_DIR = leasePath('');

/** Which file of which election a path is, if it is one. */
export interface ElectionFileRef {
  readonly kind: 'election' | 'lease';
  readonly name: string;
}

/** The election file (`/ns/service/master/<name>`) or lease file of an election, or `undefined`. */
export function electionFileOf(path: string): ElectionFileRef | undefined {
  for (const [dir, kind] of [
    [ELECTION_DIR, 'election'],
    [LEASE_DIR, 'lease'],
  ] as const) {
    if (path.startsWith(dir)) {
      const name = path.slice(dir.length);
      return name !== '' && !name.includes('/') ? { kind, name } : undefined;
    }
  }
  return undefined;
}

/** A lease body as the engine reads it; `null` for an empty, foreign or garbled one. */
export function readLease(body: string): LeaseRecord | null {
  return parseLease(body);
}
