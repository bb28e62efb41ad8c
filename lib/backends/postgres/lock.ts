/**
 * One election as one participant sees and writes it in PostgreSQL: reads
 * and compare-and-set writes of the election's row, and a watch over the
 * store's LISTEN connection. The database's clock decides when a lease has
 * run out (`expiry: 'store'`, see docs/backends/postgres.md).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { LockArgumentError } from '../../election/errors.js';
import type {
  CreateResult,
  ElectionLock,
  LockCallOptions,
  LockCapabilities,
  LockErrorKind,
  LockEvent,
  LockRead,
  LockRequest,
  LockStatus,
  LockTerm,
  LockVersion,
  RenewResult,
} from '../../election/port.js';
import { classifyError } from './errors.js';
import type { RowView } from './sql.js';
import type { PostgresElectionStore } from './store.js';
import { toView, type PgVersion, type View } from './view.js';
import { follow } from './watch.js';

interface PgTerm extends LockTerm {
  readonly version: PgVersion;
  readonly lockId: string;
}

/** The capabilities of every PostgreSQL lock. */
export const POSTGRES_CAPABILITIES: LockCapabilities = {
  // The database's clock ends a silent holder's lease: `expires_at <= now()` in SQL.
  expiry: 'store',
  // The table is durable: no row means no term was ever started (or it was released).
  absentProvesNoMaster: true,
};

export class PostgresLock implements ElectionLock {
  readonly backend = 'postgres';
  readonly id = randomBytes(8).toString('hex');
  readonly capabilities = POSTGRES_CAPABILITIES;
  private readonly name: string;
  /** Versions of this election issued by any lock of this store are accepted by all of them. */
  private readonly owner: object;
  private readonly closing = new AbortController();
  private lastRead: { inc: string; v: bigint } | null = null;

  constructor(
    private readonly store: PostgresElectionStore,
    private readonly request: LockRequest,
  ) {
    this.name = request.name;
    this.owner = store;
  }

  async read(options: LockCallOptions): Promise<LockRead> {
    const view = await this.readView(options);
    const last = this.lastRead;
    const stateLost = last !== null && (last.inc !== view.inc || view.v < last.v);
    this.lastRead = { inc: view.inc, v: view.v };
    return { ...view.snapshot, stateLost };
  }

  watch(from: LockVersion, signal: AbortSignal): AsyncIterable<LockEvent> {
    const base = this.version(from, 'from');
    const { store } = this;
    const timeoutMs = store.timeoutMs;
    return follow(
      {
        name: this.name,
        retryPeriodMs: this.request.timing.retryPeriodMs,
        subscribe: (sub) => store.listener.subscribe(sub, timeoutMs),
        read: () => this.readView({ timeoutMs, signal: this.closing.signal }),
        toView: (row) => toView(this.owner, this.name, row),
      },
      base,
      signal,
      this.closing.signal,
    );
  }

  async create(basis: LockVersion, options: LockCallOptions): Promise<CreateResult> {
    const b = this.version(basis, 'basis');
    this.mayRun('create');
    const termId = randomUUID();
    const { sql } = this.store;
    const r = await this.store.run(
      sql.create,
      [
        this.name,
        this.request.address,
        this.id,
        termId,
        this.request.timing.leaseMs,
        b.version,
        b.inc,
        sql.table,
        sql.channel,
      ],
      options,
      'create',
    );
    const row = r.rows[0] as RowView | undefined;
    if (!row) return { kind: 'lost' };
    const view = this.view(row);
    return { kind: 'won', term: this.term(view, termId) };
  }

  async renew(term: LockTerm, attempt: number, options: LockCallOptions): Promise<RenewResult> {
    const t = this.ownTerm(term);
    this.mayRun('renew');
    if (!Number.isSafeInteger(attempt) || attempt < 1) {
      throw new LockArgumentError(
        'attempt',
        `must be a whole number from 1, got ${String(attempt)}`,
      );
    }
    const { sql } = this.store;
    const r = await this.store.run(
      sql.renew,
      [this.name, t.termId, t.version.version, attempt, this.request.timing.leaseMs, sql.channel],
      options,
      'renew',
    );
    const row = r.rows[0] as RowView | undefined;
    if (row) return { kind: 'renewed', term: this.term(this.view(row), t.termId), attempt };
    // The version moved on: either the term is gone, or an earlier attempt of ours landed late.
    const now = await this.readView(options);
    const rec = now.snapshot.record;
    if (rec?.state === 'held' && rec.termId === t.termId) {
      const landed = this.term(now, t.termId);
      // A version of this term we did not get an answer for: an earlier attempt's write landed late.
      return now.snapshot.version.version !== t.version.version && now.attempt > 0
        ? { kind: 'renewed', term: landed, attempt: now.attempt }
        : { kind: 'held', term: landed };
    }
    return { kind: 'lost', holder: rec?.state === 'held' ? rec.holder : '' };
  }

  async release(term: LockTerm, options: LockCallOptions): Promise<'released' | 'not-held'> {
    const t = this.ownTerm(term);
    const { sql } = this.store;
    const r = await this.store.run(
      sql.release,
      [this.name, t.termId, sql.channel],
      options,
      'release',
    );
    return r.rows.length > 0 ? 'released' : 'not-held';
  }

  async depose(version: LockVersion, options: LockCallOptions): Promise<'deposed' | 'changed'> {
    const v = this.version(version, 'version');
    // A version without a live record (none, or its lease ran out) has no term to end.
    if (v.expired || v.version === '0') return 'changed';
    const { sql } = this.store;
    const r = await this.store.run(
      sql.depose,
      [this.name, v.version, v.inc, sql.channel],
      options,
      'depose',
    );
    return r.rows.length > 0 ? 'deposed' : 'changed';
  }

  classify(err: unknown): LockErrorKind {
    return classifyError(err);
  }

  status(): LockStatus {
    if (this.closing.signal.aborted) return { connected: false, detail: 'lock closed' };
    return this.store.connected;
  }

  async close(): Promise<void> {
    this.closing.abort();
    await Promise.resolve();
  }

  toString(): string {
    return `postgres election ${JSON.stringify(this.name)} in ${this.store.toString()}`;
  }

  // ---------------------------------------------------------------- internals

  private async readView(options: LockCallOptions): Promise<View> {
    const { sql } = this.store;
    const r = await this.store.run(sql.read, [this.name, sql.table], options, 'read');
    return this.view(r.rows[0] as unknown as RowView);
  }

  private view(row: RowView): View {
    return toView(this.owner, this.name, row);
  }

  private term(view: View, termId: string): PgTerm {
    const rec = view.snapshot.record;
    return { token: rec?.token ?? 0, termId, version: view.snapshot.version, lockId: this.id };
  }

  private mayRun(what: string): void {
    if (!this.request.participating) {
      throw new LockArgumentError('participating', `a passive participant may not ${what} a term`);
    }
  }

  private version(v: LockVersion, argument: string): PgVersion {
    const x = v as Partial<PgVersion> | null;
    if (
      !x ||
      x.owner !== this.owner ||
      x.name !== this.name ||
      typeof x.key !== 'string' ||
      typeof x.version !== 'string' ||
      typeof x.inc !== 'string'
    ) {
      throw new LockArgumentError(argument, `not a version of ${this.toString()}`);
    }
    return x as PgVersion;
  }

  private ownTerm(term: LockTerm): PgTerm {
    const t = term as Partial<PgTerm> | null;
    if (!t || t.lockId !== this.id || typeof t.termId !== 'string') {
      throw new LockArgumentError('term', `not a term won through this lock (${this.toString()})`);
    }
    this.version(t.version as LockVersion, 'term');
    return t as PgTerm;
  }
}
