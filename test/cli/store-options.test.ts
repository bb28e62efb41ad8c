/**
 * In-process tests of the backend flags (`--etcd-uri`, `--postgres-uri`,
 * `--pass-store-password`): one backend a command line, the URI as shown
 * and as handed on, and no password in any error, log line or `toString()`.
 */
import { describe, expect, it } from 'vitest';
import { childEnvironment } from '../../lib/cli/child-env.js';
import { createCliLogger } from '../../lib/cli/logger.js';
import { main, type CliIo } from '../../lib/cli/main.js';
import { parseCliArgs, UsageError, type CliOptions } from '../../lib/cli/options.js';

const PW = 'p@ss:w/rd';
const ETCD = `etcd://root:${encodeURIComponent(PW)}@127.0.0.1:2379,127.0.0.2:2379/apps`;
const PG = `postgres://app:${encodeURIComponent(PW)}@db.local:5432/app?sslmode=disable`;
const DOOZER = 'doozer:?ca=127.0.0.1:8046&sk=doozer-sk';

function parse(argv: string[], env: NodeJS.ProcessEnv = {}): CliOptions {
  const options = parseCliArgs(argv, env, { pid: 4242, writeOut: () => {} });
  if (!options) throw new Error('help was printed');
  return options;
}

function usageError(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parse(argv, env);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    const message = (e as Error).message;
    expect(message).not.toContain(PW);
    expect(message).not.toContain(encodeURIComponent(PW));
    return message;
  }
  throw new Error('no usage error');
}

describe('backend flags', () => {
  it('--etcd-uri: the store, shown with ***, handed on without user info; $DOOZER_URI ignored', () => {
    const o = parse(['--etcd-uri', ETCD], { DOOZER_URI: DOOZER });
    expect(o.doozerUri).toBeUndefined();
    expect(o.store?.kind).toBe('etcd');
    expect(o.store?.flag).toBe('--etcd-uri');
    expect(o.store?.reveal()).toBe(ETCD);
    expect(String(o.store)).toBe('etcd://root:***@127.0.0.1:2379,127.0.0.2:2379/apps');
    expect(JSON.stringify(o)).not.toContain(encodeURIComponent(PW));
    expect(o.store?.bare).toBe('etcd://127.0.0.1:2379,127.0.0.2:2379/apps');
    expect(o.passStorePassword).toBe(false);
  });

  it('--postgres-uri: keeps the user, drops the password (also ?password=)', () => {
    const o = parse(['--postgres-uri', PG]);
    expect(o.store?.kind).toBe('postgres');
    expect(String(o.store)).toBe('postgres://app:***@db.local:5432/app?sslmode=disable');
    expect(o.store?.bare).toBe('postgres://app@db.local:5432/app?sslmode=disable');
    const q = parse(['--postgres-uri', 'postgresql://app@db:5432/app?password=qpw&x=1']);
    expect(q.store?.bare).toBe('postgresql://app@db:5432/app?x=1');
    expect(String(q.store)).not.toContain('qpw');
    expect(q.store?.redact('auth failed for qpw')).toBe('auth failed for ***');
  });

  it('a URI without a password is handed on as it is', () => {
    const o = parse(['--etcd-uri', 'etcd://127.0.0.1:2379']);
    expect(o.store?.bare).toBe('etcd://127.0.0.1:2379');
    expect(String(o.store)).toBe('etcd://127.0.0.1:2379');
  });

  it('one backend a command line: the errors name the flags', () => {
    expect(usageError(['--etcd-uri', ETCD, '--postgres-uri', PG])).toBe(
      '--etcd-uri and --postgres-uri exclude each other: choose one backend',
    );
    expect(usageError(['--doozer-uri', DOOZER, '--etcd-uri', ETCD])).toMatch(
      /^--doozer-uri and --etcd-uri exclude each other/,
    );
    expect(usageError(['--postgres-uri', PG, '--doozer-boot-uri', DOOZER])).toBe(
      '--doozer-boot-uri is for Doozer: not with --postgres-uri',
    );
    expect(usageError(['--etcd-uri', ETCD, '--pass-doozer-secret'])).toBe(
      '--pass-doozer-secret is for Doozer: not with --etcd-uri',
    );
    expect(usageError(['--pass-store-password'], { DOOZER_URI: DOOZER })).toBe(
      '--pass-store-password needs --etcd-uri or --postgres-uri',
    );
  });

  it('bad URIs are usage errors naming the flag, never repeating the password', () => {
    expect(usageError(['--etcd-uri', `http://root:${PW}@h:1`])).toMatch(/^bad --etcd-uri: /);
    expect(usageError(['--etcd-uri', `etcd://root:${PW}@nohost`])).toMatch(/^bad --etcd-uri: /);
    expect(usageError(['--etcd-uri', `etcd://root@h:1`])).toMatch(/user:password/);
    expect(usageError(['--postgres-uri', `mysql://u:${encodeURIComponent(PW)}@h/db`])).toMatch(
      /^bad --postgres-uri: scheme "mysql:"/,
    );
    expect(usageError(['--postgres-uri', `postgres://u:${PW}@`])).toMatch(/^bad --postgres-uri/);
    expect(usageError(['--postgres-uri', `postgres://u:${PW}@h/db`])).toMatch(
      /^bad --postgres-uri: not a valid URL/,
    );
  });

  it('childEnvironment: ETCD_URI / POSTGRES_URI without the password, no DOOZER_*', () => {
    const env = { DOOZER_URI: DOOZER, DOOZER_BOOT_URI: DOOZER, HOME: '/h' };
    const etcd = parse(['--etcd-uri', ETCD]);
    expect(childEnvironment(env, etcd)).toEqual({
      HOME: '/h',
      ETCD_URI: 'etcd://127.0.0.1:2379,127.0.0.2:2379/apps',
    });
    const pg = parse(['--postgres-uri', PG, '--pass-store-password']);
    expect(childEnvironment(env, pg)).toEqual({ HOME: '/h', POSTGRES_URI: PG });
  });

  it('the logger cuts the password out, in both forms', () => {
    const lines: string[] = [];
    const store = parse(['--postgres-uri', PG]).store;
    const log = createCliLogger('p[1]', (l) => lines.push(l), true, store);
    log.error(`connecting with ${PW} and ${encodeURIComponent(PW)}`);
    expect(lines).toEqual(['p[1]: error: connecting with *** and ***\n']);
  });

  it('main: two backend flags exit 2 with the usage line, before connecting', async () => {
    let err = '';
    const io: CliIo = {
      pid: 1,
      env: {},
      writeOut: () => {},
      writeErr: (t) => (err += t),
      onSignal: () => () => {},
    };
    expect(await main(['--postgres-uri', PG, '--etcd-uri', ETCD], io)).toBe(2);
    expect(err).toMatch(/^elect-run-command: error: --etcd-uri and --postgres-uri exclude/);
    expect(err).toMatch(/Usage: elect-run-command/);
    expect(err).not.toContain(encodeURIComponent(PW));
  });
});

describe('--uri and $ELECTION_URI: any backend, by its scheme', () => {
  it('chooses etcd, PostgreSQL or Doozer by the scheme, exactly as the backend flag would', () => {
    const e = parse(['--uri', ETCD], { DOOZER_URI: DOOZER });
    expect(e.store?.kind).toBe('etcd');
    expect(String(e.store)).toBe(String(parse(['--etcd-uri', ETCD]).store));
    expect(parse(['--uri', PG]).store?.kind).toBe('postgres');
    expect(parse(['--uri', 'postgresql://app@db:5432/app']).store?.kind).toBe('postgres');
    const d = parse(['--uri', DOOZER]);
    expect(d.store).toBeUndefined();
    expect(String(d.doozerUri)).toBe(String(parse(['--doozer-uri', DOOZER]).doozerUri));
  });

  it('$ELECTION_URI is used when no backend flag is given, before $DOOZER_URI', () => {
    expect(parse([], { ELECTION_URI: PG, DOOZER_URI: DOOZER }).store?.kind).toBe('postgres');
    expect(parse(['--etcd-uri', ETCD], { ELECTION_URI: PG }).store?.kind).toBe('etcd');
    expect(parse([], { ELECTION_URI: '', DOOZER_URI: DOOZER }).store).toBeUndefined();
  });

  it('an unknown scheme, or --uri with a backend flag, is a usage error naming it', () => {
    const bad = usageError(['--uri', `http://u:${encodeURIComponent(PW)}@host/`]);
    expect(bad).toContain('--uri');
    expect(bad).toContain('"http:"');
    expect(bad).toMatch(/doozer:.*etcd:\/\/.*postgres:\/\//);
    expect(usageError([], { ELECTION_URI: 'redis://x' })).toContain('ELECTION_URI');
    expect(usageError(['--uri', ETCD, '--postgres-uri', PG])).toContain(
      '--uri and --postgres-uri exclude each other',
    );
  });
});
