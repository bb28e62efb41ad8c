/**
 * The Doozer layout of one election, as pure functions: the two files, how
 * their bodies are written, and how what a participant saw of them reads as
 * the storage port's record, version key and liveness.
 *
 * - `/ns/service/master/<name>` (the election file) holds the master's
 *   `host:port` and nothing else, as the Go package writes it; it is
 *   created once per term (SET at rev 0) and deleted to end a term.
 * - `/ns/service/master-lease/<name>` (the lease file) holds a JSON lease
 *   record; the master renews it by compare-and-set.
 *
 * The path and lease-body codec is the one the engine has always used
 * (`lib/election/lease.ts`), so both write the same bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ElectionConfigError } from '../../election/errors.js';
import {
  electionGlob,
  electionPath,
  encodeLease,
  leasePath,
  parseLease,
  type LeaseRecord,
} from '../../election/lease.js';
import type { LockRecord } from '../../election/port.js';
import { isValidPathComponent } from '../../wire/path.js';

export { electionGlob, electionPath, leasePath, parseLease, type LeaseRecord };

/** The election file as seen: `null` when missing. */
export interface ElectionFile {
  /** The file rev: the term's fencing token. */
  readonly rev: number;
  /** The body: the master's `host:port`. */
  readonly master: string;
}

/** The lease file as seen (`rev` 0 and `text` `''`: missing). */
export interface LeaseFile {
  readonly rev: number;
  /** The raw body: with the rev, what identifies this version of the file. */
  readonly text: string;
  /** The parsed body; `null` when missing, foreign or garbled. */
  readonly record: LeaseRecord | null;
}

/** Both files of an election, as one participant saw them at one store rev. */
export interface ElectionFiles {
  readonly election: ElectionFile | null;
  readonly lease: LeaseFile;
}

export const leaseFile = (rev: number, text: string): LeaseFile => ({
  rev,
  text,
  record: parseLease(text),
});

/** Both files from what GET answered for each (rev 0: missing). */
export const filesOf = (
  e: { readonly rev: number; readonly text: string },
  l: { readonly rev: number; readonly text: string },
): ElectionFiles => ({
  election: e.rev === 0 ? null : { rev: e.rev, master: e.text },
  lease: leaseFile(l.rev, l.text),
});

/** No files at all: a fresh election (or a store that lost its state). */
export const NO_FILES: ElectionFiles = { election: null, lease: leaseFile(0, '') };

/**
 * Checks an election name: it becomes the last component of both paths, so
 * it must be one Doozer path component (letters, digits, `.` and `-`).
 * Anything else could alias another election or fail on the wire.
 */
export function checkElectionName(name: unknown): string {
  if (typeof name === 'string' && isValidPathComponent(name)) return name;
  throw new ElectionConfigError(
    'name',
    `invalid election name ${JSON.stringify(name) ?? typeof name}: on Doozer it becomes the last component of ${electionPath('<name>')}, so it must be non-empty and hold only letters, digits, "." and "-"`,
  );
}

/** Checks the address written to the election file: non-empty, one line, no control characters. */
export function checkAddress(address: unknown): string {
  if (typeof address === 'string' && /^[^\p{Cc}\s]+$/u.test(address)) return address;
  throw new ElectionConfigError(
    'address',
    `invalid address ${JSON.stringify(address) ?? typeof address}: the election file holds the master's "host:port"`,
  );
}

/** A fresh random nonce: one per term, and one per release. */
export const newNonce = (): string => randomBytes(6).toString('hex');

/** What a participant writes into the lease file. */
export interface LeaseWriter {
  /** The participant's advertised `host:port`. */
  readonly holder: string;
  /** The participant's lock id. */
  readonly id: string;
}

/** The body of a held lease: term `term`, renewal `seq` (0 when the term is taken), the term's nonce. */
export const heldLease = (w: LeaseWriter, term: number, seq: number, nonce: string): string =>
  encodeLease({ v: 1, state: 'held', term, holder: w.holder, id: w.id, seq, nonce });

/** The body that gives term `term` back after renewal `seq`; it gets a nonce of its own. */
export const releasedLease = (w: LeaseWriter, term: number, seq: number): string =>
  encodeLease({
    v: 1,
    state: 'released',
    term,
    holder: w.holder,
    id: w.id,
    seq: seq + 1,
    nonce: newNonce(),
  });

/** Whether a lease record is the held record of our term `token` with `nonce`. */
export const isOwnHeldLease = (
  r: LeaseRecord | null,
  id: string,
  token: number,
  nonce: string,
): boolean =>
  r !== null && r.state === 'held' && r.id === id && r.term === token && r.nonce === nonce;

/**
 * A term's identity: its fencing token and master, in the store epoch the
 * participant saw it in. The same through every state of the term (taking
 * the lease, renewals, a release, a depose), so a participant reports each
 * term once; a store that lost its state is a new epoch.
 */
export const termIdOf = (epoch: number, token: number, master: string): string =>
  `${epoch}:${token}:${master}`;

/**
 * What the files say of the election, in the port's words.
 *
 * - election file of term R, lease `held` for term R: `held` by the lease's holder;
 * - election file of term R, lease `released` for term R: `released` (the
 *   holder gave it back and has not deleted its election file yet);
 * - election file of term R, any other lease (missing, garbled, of another
 *   term): `unleased`: a Go master, or one of ours that has not taken its
 *   lease yet (`ownElectionRev` says whether this participant created the
 *   file: then it carries `ownId`);
 * - no election file, lease `held`: `ended` (deposed, or deleted by a forced
 *   election, the Go tool's included);
 * - no election file, lease `released`: `released`;
 * - no election file, no readable lease: no record.
 */
export function recordOf(
  files: ElectionFiles,
  epoch: number,
  own: { readonly id: string; readonly createdElectionRev: (rev: number) => boolean },
): LockRecord | null {
  const e = files.election;
  const l = files.lease.record;
  if (e) {
    if (l && l.term === e.rev) {
      return {
        state: l.state,
        holder: l.holder,
        holderId: l.id,
        token: l.term,
        termId: termIdOf(epoch, e.rev, e.master),
      };
    }
    return {
      state: 'unleased',
      holder: e.master,
      holderId: own.createdElectionRev(e.rev) ? own.id : '',
      token: e.rev,
      termId: termIdOf(epoch, e.rev, e.master),
    };
  }
  if (!l) return null;
  return {
    state: l.state === 'held' ? 'ended' : 'released',
    holder: l.holder,
    holderId: l.id,
    token: l.term,
    termId: termIdOf(epoch, l.term, l.holder),
  };
}

const digest = (...parts: string[]): string =>
  createHash('sha256').update(parts.join('\0')).digest('base64url').slice(0, 16);

/**
 * The key of a version: equal for the same contents of both files in the
 * same store epoch (`epoch` counts the times this participant saw the store
 * lose its state). Bodies are part of it, because revs are reused by a
 * server that restarted empty.
 */
export function versionKey(files: ElectionFiles, epoch: number): string {
  const e = files.election;
  const l = files.lease;
  return `${epoch}:${e?.rev ?? 0}:${l.rev}:${digest(e ? e.master : '', l.text)}`;
}

/**
 * The liveness of a version: it changes when the lease file changes (a
 * renewal, a new term's lease), when an election file is created (a new
 * term, also a Go master's), and when `era` moves (this participant can no
 * longer vouch for what it saw: the store lost its state, or a missing lease
 * was read from another server node). It does not change when the election
 * file is deleted (a deposed or forced-out term is waited out from its
 * holder's last renewal). `electionRev` is the largest election-file rev the
 * participant has seen in this era.
 */
export function livenessOf(files: ElectionFiles, era: number, electionRev: number): string {
  const l = files.lease;
  return `${era}:${Math.max(electionRev, files.election?.rev ?? 0)}:${l.rev}:${digest(l.text)}`;
}
