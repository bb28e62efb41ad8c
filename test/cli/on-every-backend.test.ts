/**
 * `elect-run-command` on every backend (the embedded Doozer server, a real
 * etcd, embedded PostgreSQL), the same assertions on each: the hooks run
 * with the right environment (MASTER, the fencing token, the term's
 * deadline, the URI without its password), a failing `--master-cmd` hands
 * mastership over, `--observe` prints every change of master,
 * `--force-election` starts a new term, and bad command lines exit 2 with a
 * usage message. The `--run` supervision is in on-every-backend-run.test.ts.
 * One server per backend for the file; a fresh election name per test.
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { EVERY_BACKEND, PASSWORD, useBackend, type BackendSuite } from './backends.js';
import { TIMING, WAIT_MS, type Cli } from './harness.js';
import {
  A,
  B,
  envFile,
  expectNoPassword,
  expectStoreVariables,
  expectTermVariables,
  literal,
  monotonicNow,
  onStore,
  participant,
  records,
} from './every-backend.js';

/** Usage cases of one backend only: label, arguments, the error expected. */
type UsageCase = [string, string[], RegExp];

const BACKEND_USAGE: Record<string, (store: string[]) => UsageCase[]> = {
  Doozer: (store) => [
    ['bad URI', ['--doozer-uri', 'http://x'], /bad Doozer URI/],
    [
      'bad URI with a secret',
      ['--doozer-uri', `doozer:?ca=bad!host&sk=${PASSWORD}`],
      /bad Doozer URI/,
    ],
    [
      'a second backend',
      [...store, '--etcd-uri', 'etcd://127.0.0.1:1'],
      /--doozer-uri and --etcd-uri exclude each other/,
    ],
    [
      '--pass-store-password on Doozer',
      [...store, '--pass-store-password'],
      /--pass-store-password needs --etcd-uri or --postgres-uri/,
    ],
  ],
  etcd: (store) => [
    ['bad URI', ['--etcd-uri', `http://root:${PASSWORD}@h:1`], /bad --etcd-uri: /],
    ['a user without password', ['--etcd-uri', 'etcd://root@h:1'], /user:password/],
    [
      'a second backend',
      [...store, '--postgres-uri', 'postgres://u@127.0.0.1/db'],
      /--etcd-uri and --postgres-uri exclude each other/,
    ],
    [
      'a Doozer flag',
      [...store, '--pass-doozer-secret'],
      /--pass-doozer-secret is for Doozer: not with --etcd-uri/,
    ],
  ],
  PostgreSQL: (store) => [
    [
      'bad URI',
      ['--postgres-uri', `mysql://u:${PASSWORD}@h/db`],
      /bad --postgres-uri: scheme "mysql:"/,
    ],
    ['no host', ['--postgres-uri', `postgres://u:${PASSWORD}@`], /bad --postgres-uri: /],
    [
      'a second backend',
      ['--doozer-uri', 'doozer:?ca=127.0.0.1:1', ...store],
      /--doozer-uri and --postgres-uri exclude each other/,
    ],
    [
      'a Doozer flag',
      [...store, '--doozer-boot-uri', 'doozer:?ca=127.0.0.1:1'],
      /--doozer-boot-uri is for Doozer: not with --postgres-uri/,
    ],
  ],
};

/** Usage cases of every backend, on a command line that names `store`. */
const usageCases = (store: string[]): UsageCase[] => [
  ['unknown flag', [...store, '--bogus'], /unknown option '--bogus'/],
  [
    'timings the engine refuses',
    [...store, '--lease-ms', '500', '--renew-deadline-ms', '600'],
    /--renew-deadline-ms: must be less than leaseMs/,
  ],
  ['not a number', [...store, '--lease-ms', 'soon'], /--lease-ms/],
  ['not a number, Go style', [...store, '-lease-ms=0x10'], /--lease-ms/],
  ['bad name', [...store, '--name', 'a/b'], /invalid election name/],
  ['bad address', [...store, '--address', 'nohost'], /invalid address/],
  ['--run without command', [...store, '--participate', '--run'], /--run needs a command/],
  ['--run while passive', [...store, '--run', '--', 'true'], /--run needs --participate/],
  ['stray operand', [...store, 'true'], /unexpected argument "true"/],
];

/** Waits until `cli` prints a line of stdout matching `re` within `timeoutMs`; `undefined` if not. */
async function stdoutWithin(
  cli: Cli,
  re: RegExp,
  timeoutMs: number,
): Promise<RegExpMatchArray | undefined> {
  const find = (): RegExpMatchArray | undefined =>
    cli.stdout.map((l) => re.exec(l)).find((m) => m !== null) ?? undefined;
  try {
    await cli.until(() => find() !== undefined, `${re} on stdout`, timeoutMs);
  } catch (e) {
    if (cli.exit !== undefined) throw e;
  }
  return find();
}

describe.each(EVERY_BACKEND)('elect-run-command on $name', ({ name, skip, start }) => {
  const suite: BackendSuite = useBackend(skip, start);

  it.skipIf(skip)(
    'two participants elect one master; the hooks get MASTER, FENCING_TOKEN, TERM_DEADLINE and the URI without its password',
    async () => {
      const { ws } = suite;
      const after = { monotonic: monotonicNow(), wall: Date.now() };
      const a = ws.start('A', participant(suite, A, 'a', ['--verbose']));
      const b = ws.start('B', participant(suite, B, 'b', ['--verbose']));
      await waitFor(() => ws.read('a.master') !== '' || ws.read('b.master') !== '', 'a master', {
        timeoutMs: WAIT_MS,
      });
      const [master, slave, m, s, address] =
        ws.read('a.master') !== '' ? [a, b, 'a', 'b', A] : [b, a, 'b', 'a', B];
      const [, term] = await master.line('stderr', /became master \(term (\d+)\)/);

      // The master hook: its own address, its term's token and deadline.
      expect(records(suite, `${m}.master`)).toHaveLength(1);
      const [own, token, wallDeadline, deadline] = records(suite, `${m}.master`)[0]!;
      expect(own).toBe(address);
      expectTermVariables({ token, deadline, wallDeadline }, term!, after);
      await master.until(() => ws.read(`${m}.master-env`) !== '', "the master hook's env");
      const masterEnv = envFile(suite, `${m}.master-env`);
      expect(masterEnv.get('MASTER')).toBe(address);
      expectStoreVariables(suite, masterEnv);

      // The slave hook: the master's address and term, never the master hook.
      await slave.until(() => ws.read(`${s}.slave-env`) !== '', 'the slave hook');
      expect(records(suite, `${s}.slave`)).toEqual([[address, term]]);
      expect(ws.read(`${s}.master`)).toBe('');
      await slave.line(
        'stderr',
        new RegExp(`following master ${literal(address)} \\(term ${term}\\)`),
      );
      const slaveEnv = envFile(suite, `${s}.slave-env`);
      expect(slaveEnv.get('MASTER')).toBe(address);
      expect(slaveEnv.get('FENCING_TOKEN')).toBe(term);
      expectStoreVariables(suite, slaveEnv);

      // A clean stop of the slave exits 0 and leaves the master alone.
      slave.signal('SIGTERM');
      expect(await slave.waitExit()).toEqual({ code: 0, signal: null });
      expect(master.exit).toBeUndefined();
      master.signal('SIGTERM');
      expect(await master.waitExit()).toEqual({ code: 0, signal: null });
      expectNoPassword(a);
      expectNoPassword(b);
    },
    WAIT_MS * 3,
  );

  it.skipIf(skip)(
    'a failing --master-cmd gives up mastership: the other participant takes over and stays master',
    async () => {
      const { ws } = suite;
      const observer = ws.start('observer', [...onStore(suite), '--observe']);
      // A's master hook records each run, then fails.
      const a = ws.start('A', [
        ...onStore(suite),
        '--participate',
        '--address',
        A,
        '--master-cmd',
        `printf '%s\\n' "$MASTER" >> ${ws.path('a.master')}; exit 3`,
        '--error-cmd',
        `printf '%s\\n' >> ${ws.path('a.errors')}`,
      ]);
      const [, term] = await a.line('stderr', /became master \(term (\d+)\)/);
      // B joins once A has won (and failed): it takes over, and stays master.
      const b = ws.start('B', participant(suite, B, 'b'));
      await b.until(() => ws.read('b.master') !== '', "B's master hook");
      const [, bTerm] = await b.line('stderr', /became master \(term (\d+)\)/);
      expect(Number(bTerm)).toBeGreaterThan(Number(term));
      expect(records(suite, 'b.master').map((r) => r.slice(0, 2))).toEqual([[B, bTerm]]);

      // A ran its hook, reported the failure through --error-cmd, stepped down and follows B.
      expect(ws.lines('a.master')[0]).toBe(A);
      await a.line('stderr', /master-cmd exited with code 3/);
      await a.line(
        'stderr',
        new RegExp(`steps down from master term ${term}: becomeMaster failed`),
      );
      await a.until(
        () => ws.read('a.errors').includes('--master-cmd exited with code 3'),
        'the error hook',
      );
      await a.line('stderr', new RegExp(`following master ${literal(B)} \\(term ${bTerm}\\)`));
      const bLine = `master ${B} term ${bTerm}`;
      await observer.until(() => observer.stdout.includes(bLine), `"${bLine}"`);
      // B stays master: its term is the last change the observer saw.
      expect(observer.stdout.filter((l) => l.startsWith('master ')).at(-1)).toBe(bLine);
      expect(a.exit).toBeUndefined(); // a failing hook is not fatal
      expect(b.exit).toBeUndefined();
      expectNoPassword(a);
      expect(ws.read('a.errors')).not.toContain(PASSWORD);
    },
    WAIT_MS * 3,
  );

  it.skipIf(skip)(
    '--observe prints the state at start and every change of master, one line each (the observer chooses its backend with --uri)',
    async () => {
      const { ws } = suite;
      // --uri: the backend by the URI's scheme, the same store as the participants' flag.
      const [, ...rest] = onStore(suite);
      const observer = ws.start('observer', ['--uri', ...rest, '--observe']);
      // A fresh election: nobody is master yet.
      await observer.until(() => observer.stdout.length > 0, 'the first --observe line');
      expect(observer.stdout[0]).toBe('no master');

      const a = ws.start('A', participant(suite, A, 'a'));
      const [, t1] = await observer.line('stdout', /^master 127\.0\.0\.1:1001 term (\d+)$/);
      await a.line('stderr', new RegExp(`became master \\(term ${t1}\\)`));
      const b = ws.start('B', participant(suite, B, 'b'));
      await b.line('stderr', new RegExp(`following master ${literal(A)} \\(term ${t1}\\)`));

      // A leaves: B takes over in a new term.
      a.signal('SIGTERM');
      expect(await a.waitExit()).toEqual({ code: 0, signal: null });
      const [, t2] = await observer.line('stdout', /^master 127\.0\.0\.1:1002 term (\d+)$/);
      expect(Number(t2)).toBeGreaterThan(Number(t1));
      await b.line('stderr', new RegExp(`became master \\(term ${t2}\\)`));

      // B leaves: nobody is master.
      b.signal('SIGTERM');
      expect(await b.waitExit()).toEqual({ code: 0, signal: null });
      await observer.until(() => observer.stdout.at(-1) === 'no master', '"no master" after B');
      // One line per change: between the masters at most a "no master", never a repeat.
      expect(observer.stdout.filter((l) => l !== 'no master')).toEqual([
        `master ${A} term ${t1}`,
        `master ${B} term ${t2}`,
      ]);
      observer.stdout.forEach((l, i) => expect(l, `line ${i}`).not.toBe(observer.stdout[i - 1]));
      observer.signal('SIGINT');
      expect(await observer.waitExit()).toEqual({ code: 0, signal: null });
      expect(observer.transcript()).toMatch(/following election "e\d+" as /);
      expectNoPassword(observer);
    },
    WAIT_MS * 3,
  );

  it.skipIf(skip)(
    '--force-election from a passive process starts a new term; the only participant wins it again',
    async () => {
      const { ws } = suite;
      const observer = ws.start('observer', [...onStore(suite), '--observe']);
      const a = ws.start('A', participant(suite, A, 'a', ['--verbose']));
      const [, t1] = await observer.line('stdout', /^master 127\.0\.0\.1:1001 term (\d+)$/);
      await a.until(() => ws.lines('a.master').length === 1, 'the master hook');

      // A forced election can miss (a renewal landing in between makes it a
      // no-op): force again until the observer sees a new term, a few times at most.
      const newTerm = new RegExp(`^master ${literal(A)} term (?!${t1}$)(\\d+)$`);
      let t2: string | undefined;
      for (let attempt = 1; attempt <= 4 && t2 === undefined; attempt++) {
        const forcer = ws.start(`forcer ${attempt}`, [...onStore(suite), '--force-election']);
        await forcer.line('stderr', /forced a new election/);
        t2 = (await stdoutWithin(observer, newTerm, 4 * TIMING.leaseMs))?.[1];
        forcer.signal('SIGTERM');
        expect(await forcer.waitExit()).toEqual({ code: 0, signal: null });
        expectNoPassword(forcer);
      }
      expect(
        t2,
        `a new term after forcing\n${a.transcript()}\n${observer.transcript()}`,
      ).toBeDefined();
      expect(Number(t2)).toBeGreaterThan(Number(t1));
      await a.line('stderr', new RegExp(`became master \\(term ${t2}\\)`));
      await a.until(() => ws.lines('a.master').length >= 2, 'the second master hook');
      expect(records(suite, 'a.master').map((r) => r[0])).toEqual(
        ws.lines('a.master').map(() => A),
      );
      // Each change once, the terms growing.
      const terms = observer.stdout
        .filter((l) => l !== 'no master')
        .map((l) => Number(l.split(' ')[3]));
      expect(terms).toEqual([...terms].sort((x, y) => x - y));
      expect(new Set(terms).size).toBe(terms.length);
      a.signal('SIGTERM');
      expect(await a.waitExit()).toEqual({ code: 0, signal: null });
    },
    WAIT_MS * 4,
  );

  it.skipIf(skip)(
    'rejects bad command lines with exit status 2 and a usage message, never printing the password',
    async () => {
      const { ws } = suite;
      const store = [suite.backend.flag, suite.backend.uri(PASSWORD)];
      const cases = [...usageCases(store), ...BACKEND_USAGE[name]!(store)];
      const clis = cases.map(([label, args]) => ws.start(label, args));
      await Promise.all(clis.map((c) => c.waitExit()));
      cases.forEach(([label, , re], i) => {
        const cli = clis[i]!;
        const err = cli.stderr.join('\n');
        expect(cli.exit, label).toEqual({ code: 2, signal: null });
        expect(err, label).toMatch(re);
        expect(err, label).toMatch(/^elect-run-command: error: /);
        expect(err, label).toMatch(/^Usage: elect-run-command/m);
        expect(cli.transcript(), label).not.toContain(PASSWORD);
        expect(cli.stdout, label).toEqual([]);
      });
    },
  );
});
