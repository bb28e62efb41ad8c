/**
 * The dead man's switch of `--run` (issue 17) on etcd and on PostgreSQL: the
 * Doozer scenarios of dead-mans-switch.test.ts on each other backend. Two
 * compiled CLIs; the master's CLI alone is frozen (SIGSTOP) for longer than
 * the lease, or killed (SIGKILL); the other replica takes over, and the
 * children's running intervals (CLOCK_MONOTONIC ticks) never overlap, also
 * after SIGCONT. TIMING.leaseMs is 2000: etcd leases are whole seconds, 2 s
 * at least.
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { BACKENDS, PASSWORD, useBackend } from './backends.js';
import { TIMING_FLAGS, WAIT_MS, groupOf, isAlive, type Cli } from './harness.js';
import { childPids, expectNoOverlap, tickRun } from './ticks.js';

const A = '127.0.0.1:1001';
const B = '127.0.0.1:1002';

describe.each(BACKENDS)(
  "elect-run-command --run on $name: the dead man's switch",
  ({ skip, start }) => {
    const suite = useBackend(skip, start);

    /** A participant in election `faults<n>` whose child ticks into `<tag>.ticks`. */
    function replica(label: string, address: string, tag: string): Cli {
      return suite.ws.start(label, [
        suite.backend.flag,
        suite.backend.uri(PASSWORD),
        '--name',
        `faults${suite.election}`,
        '--participate',
        '--address',
        address,
        ...TIMING_FLAGS,
        ...tickRun(suite.ws, tag),
      ]);
    }

    /** Starts A, waits until its child ticks, then starts B and waits until it follows A. */
    async function masterAndFollower(): Promise<{ a: Cli; b: Cli; aChild: number }> {
      const a = replica('A', A, 'a');
      const aChild = await suite.ws.pid('a.pid', a);
      await a.until(() => suite.ws.lines('a.ticks').length > 0, "A's child to tick");
      const b = replica('B', B, 'b');
      await b.line('stderr', /following master 127\.0\.0\.1:1001/);
      expect(suite.ws.read('b.pid')).toBe('');
      return { a, b, aChild };
    }

    it.skipIf(skip)(
      'SIGSTOP of the master CLI: its child stops before B starts its own; after SIGCONT A follows B, no overlap',
      async () => {
        const { a, b, aChild } = await masterAndFollower();

        a.signal('SIGSTOP'); // the CLI alone: its watchdog and child keep running
        const bChild = await suite.ws.pid('b.pid', b);
        await b.until(() => suite.ws.lines('b.ticks').length > 0, "B's child to tick");
        expect(isAlive(aChild)).toBe(false);
        expect(expectNoOverlap(suite.ws).map((i) => i.who.slice(0, 1))).toEqual(['a', 'b']);
        expect(a.exit).toBeUndefined();

        a.signal('SIGCONT');
        await a.line('stderr', /following master 127\.0\.0\.1:1002/);
        expect(a.stderr.join('\n')).toMatch(/the watchdog stops child .*renew deadline passed/);
        expect(childPids(suite.ws, 'a')).toEqual(new Set([String(aChild)]));
        expect(isAlive(bChild)).toBe(true);
        expectNoOverlap(suite.ws);

        // A is still a replica: when B stops, A takes over with a new child.
        b.signal('SIGTERM');
        expect(await b.waitExit()).toEqual({ code: 0, signal: null });
        await a.until(() => childPids(suite.ws, 'a').size === 2, 'a new child on A');
        expect(expectNoOverlap(suite.ws).map((i) => i.who.slice(0, 1))).toEqual(['a', 'b', 'a']);
      },
      WAIT_MS * 4,
    );

    it.skipIf(skip)(
      'SIGKILL of the master CLI: its watchdog stops the child before B starts its own',
      async () => {
        const { a, b, aChild } = await masterAndFollower();
        const watchdog = groupOf(aChild);
        expect(watchdog).toBeDefined();
        expect(watchdog).not.toBe(aChild); // the child runs in its watchdog's group

        a.signal('SIGKILL');
        await a.waitExit();
        await waitFor(
          () => !isAlive(aChild) && !isAlive(watchdog!),
          "A's child and watchdog to end",
          {
            timeoutMs: WAIT_MS,
          },
        );
        await suite.ws.pid('b.pid', b);
        await b.until(() => suite.ws.lines('b.ticks').length > 0, "B's child to tick");
        expect(expectNoOverlap(suite.ws).map((i) => i.who.slice(0, 1))).toEqual(['a', 'b']);
        expect(childPids(suite.ws, 'a').size).toBe(1);
      },
      WAIT_MS * 4,
    );
  },
);
