/**
 * `elect-run-command --run` on every backend (the embedded Doozer server, a
 * real etcd, embedded PostgreSQL), the same assertions on each: the child
 * runs only on the master, with its term's environment; SIGTERM, SIGINT and
 * SIGHUP of the CLI stop it (SIGKILL after the grace period for one that
 * ignores SIGTERM) and another replica takes over only after; the CLI exits
 * with the child's status, also when the child exits by itself or cannot be
 * started. The hooks, `--observe` and the usage errors are in
 * on-every-backend.test.ts. One server per backend for the file.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EVERY_BACKEND, useBackend, type BackendSuite } from './backends.js';
import { WAIT_MS, isAlive } from './harness.js';
import {
  A,
  B,
  GRACE_MS,
  SLEEPER,
  environOf,
  expectNoPassword,
  expectStoreVariables,
  expectTermVariables,
  monotonicNow,
  onStore,
  participant,
  records,
  run,
} from './every-backend.js';

describe.each(EVERY_BACKEND)('elect-run-command --run on $name', ({ skip, start }) => {
  const suite: BackendSuite = useBackend(skip, start);

  it.skipIf(skip)(
    'the child runs only on the master, with its term in the env; SIGTERM stops it, and the other takes over only after',
    async () => {
      const { ws } = suite;
      const after = { monotonic: monotonicNow(), wall: Date.now() };
      const a = ws.start('A', [...participant(suite, A, 'a'), ...run(suite, 'a', SLEEPER)]);
      const aPid = await ws.pid('a.pid', a);
      expect(isAlive(aPid), a.transcript()).toBe(true);
      const [, term] = await a.line('stderr', /became master \(term (\d+)\)/);
      // The master hook ran first; the child gets the same term.
      expect(records(suite, 'a.master').map((r) => r.slice(0, 2))).toEqual([[A, term]]);
      const env = environOf(aPid);
      expect(env.get('MASTER')).toBe(A);
      expectTermVariables(
        {
          token: env.get('FENCING_TOKEN'),
          deadline: env.get('TERM_DEADLINE_MONOTONIC_MS'),
          wallDeadline: env.get('TERM_DEADLINE'),
        },
        term!,
        after,
      );
      expectStoreVariables(suite, env);

      const b = ws.start('B', [...participant(suite, B, 'b'), ...run(suite, 'b', SLEEPER)]);
      await b.until(() => ws.read('b.slave') !== '', 'B to follow A');
      expect(ws.read('b.pid')).toBe(''); // one child: A's

      // The signal goes to A's child; A exits with the child's status (killed
      // by SIGTERM: 143) and hands over to B.
      a.signal('SIGTERM');
      expect(await a.waitExit()).toEqual({ code: 143, signal: null });
      const bPid = await ws.pid('b.pid', b);
      // B's child started after A's had died: A released the lease only then.
      expect(isAlive(aPid)).toBe(false);
      expect(isAlive(bPid)).toBe(true);
      const [, bTerm] = await b.line('stderr', /became master \(term (\d+)\)/);
      expect(Number(bTerm)).toBeGreaterThan(Number(term));
      expect(environOf(bPid).get('FENCING_TOKEN')).toBe(bTerm);
      expect(environOf(bPid).get('MASTER')).toBe(B);
      await b.until(() => ws.read('b.master') !== '', "B's master hook");
      expect(records(suite, 'b.master').map((r) => r.slice(0, 2))).toEqual([[B, bTerm]]);

      // SIGINT is forwarded too: the child dies of it, B exits 128 + 2.
      b.signal('SIGINT');
      expect(await b.waitExit()).toEqual({ code: 130, signal: null });
      expect(isAlive(bPid)).toBe(false);
      expectNoPassword(a);
      expectNoPassword(b);
    },
    WAIT_MS * 3,
  );

  it.skipIf(skip)(
    'when the child exits by itself, the CLI resigns and exits with its status; the other takes over',
    async () => {
      const { ws } = suite;
      const exitOnStop = 'echo $$ > "$0"; while [ ! -e "$0.stop" ]; do sleep 0.05; done; exit 7';
      const a = ws.start('A', [...participant(suite, A, 'a'), ...run(suite, 'a', exitOnStop)]);
      await ws.pid('a.pid', a);
      const b = ws.start('B', [...participant(suite, B, 'b'), ...run(suite, 'b', SLEEPER)]);
      await b.until(() => ws.read('b.slave') !== '', 'B to follow A');

      writeFileSync(ws.path('a.pid.stop'), '');
      expect(await a.waitExit()).toEqual({ code: 7, signal: null });
      expect(a.stderr.join('\n')).toMatch(/ended by itself \(status 7\)/);
      const bPid = await ws.pid('b.pid', b);
      expect(isAlive(bPid)).toBe(true);
      await b.line('stderr', /became master/);
    },
    WAIT_MS * 3,
  );

  it.skipIf(skip)(
    "the CLI exits with the child's status: 0, 7, 128 + signal, 127 not found, 126 not executable",
    async () => {
      const { ws } = suite;
      const notExecutable = ws.path('not-executable');
      writeFileSync(notExecutable, '#!/bin/sh\nexit 0\n');
      chmodSync(notExecutable, 0o644);
      const sh = (script: string): string[] => ['sh', '-c', script];
      const cases: [string, string[], number, RegExp][] = [
        ['exit 0', sh('exit 0'), 0, /ended by itself \(status 0\)/],
        ['exit 7', sh('exit 7'), 7, /ended by itself \(status 7\)/],
        ['killed by SIGKILL', sh('kill -KILL $$'), 137, /ended by itself \(status 137\)/],
        ['killed by SIGUSR1', sh('kill -USR1 $$'), 138, /ended by itself \(status 138\)/],
        ['not found', [ws.path('no-such-program')], 127, /cannot start child/],
        ['not executable', [notExecutable], 126, /cannot start child/],
      ];
      // Each alone in an election of its own, one after the other.
      for (const [i, [label, command, status, log]] of cases.entries()) {
        const cli = ws.start(label, [
          ...onStore(suite, `x${i}-`),
          '--participate',
          '--run',
          '--',
          ...command,
        ]);
        await cli.waitExit();
        expect(cli.exit, `${label}\n${cli.transcript()}`).toEqual({ code: status, signal: null });
        expect(cli.stderr.join('\n'), label).toMatch(/became master/);
        expect(cli.stderr.join('\n'), label).toMatch(log);
        expectNoPassword(cli);
      }
    },
    WAIT_MS * 4,
  );

  it.skipIf(skip)(
    'SIGHUP (terminal gone) stops the child with SIGTERM, so it never outlives the CLI',
    async () => {
      const { ws } = suite;
      const a = ws.start('A', [...participant(suite, A, 'a'), ...run(suite, 'a', SLEEPER)]);
      const pid = await ws.pid('a.pid', a);
      await a.line('stderr', /started child/);
      a.signal('SIGHUP');
      expect(await a.waitExit()).toEqual({ code: 143, signal: null });
      expect(isAlive(pid)).toBe(false);
    },
  );

  it.skipIf(skip)('a child that ignores SIGTERM gets SIGKILL after the grace period', async () => {
    const { ws } = suite;
    const stubborn = 'trap "" TERM; echo $$ > "$0"; exec sleep 600';
    const a = ws.start('A', [...participant(suite, A, 'a'), ...run(suite, 'a', stubborn)]);
    const pid = await ws.pid('a.pid', a);
    await a.line('stderr', /started child/);
    const t0 = Date.now();
    a.signal('SIGTERM');
    expect(await a.waitExit()).toEqual({ code: 137, signal: null }); // 128 + SIGKILL
    // Not before the grace period (less a little for timer granularity).
    expect(Date.now() - t0).toBeGreaterThanOrEqual(GRACE_MS - 20);
    expect(isAlive(pid)).toBe(false);
    expect(a.stderr.join('\n')).toMatch(new RegExp(`SIGKILL in ${GRACE_MS} ms`));
    expect(a.stderr.join('\n')).toMatch(/sending SIGKILL/);
  });
});
