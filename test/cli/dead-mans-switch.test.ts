/**
 * The dead man's switch of `--run` (issue 17): a master's CLI that is frozen
 * (SIGSTOP) or killed (SIGKILL) cannot keep its child running beside the
 * next master's. Two compiled CLIs on the embedded Doozer server; each
 * `--run` child appends CLOCK_MONOTONIC timestamps to a file while it runs,
 * and the test checks that no two children's running intervals overlap.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DoozerServer } from '../../lib/testing/index.js';
import { waitFor } from '../support/wait.js';
import {
  TIMING_FLAGS,
  WAIT_MS,
  Workspace,
  cleanEnv,
  groupOf,
  isAlive,
  type Cli,
} from './harness.js';
import {
  childPids as pidsOf,
  expectNoOverlap as expectTicksApart,
  tickRun,
  writeTickWorker,
  type Interval,
} from './ticks.js';

const A = '127.0.0.1:1001';
const B = '127.0.0.1:1002';

let server: DoozerServer;
let ws: Workspace;

beforeEach(async () => {
  server = await DoozerServer.start({ host: '127.0.0.1', port: 0, heartbeatMs: 0 });
  ws = new Workspace(cleanEnv({ DOOZER_URI: server.uri }));
  writeTickWorker(ws);
});

afterEach(async () => {
  try {
    await ws.cleanup();
  } finally {
    await server.close();
  }
});

/** A participant whose `--run` child ticks into `<tag>.ticks`. */
function replica(label: string, address: string, tag: string): Cli {
  return ws.start(label, [
    '--participate',
    '--address',
    address,
    ...TIMING_FLAGS,
    ...tickRun(ws, tag),
  ]);
}

const expectNoOverlap = (): Interval[] => expectTicksApart(ws);
const childPids = (tag: string): Set<string> => pidsOf(ws, tag);

function pgrpOf(pid: number): number {
  const pgrp = groupOf(pid);
  if (pgrp === undefined) throw new Error(`process ${pid} is gone`);
  return pgrp;
}

/** Starts A, waits until its child runs, then starts B and waits until it follows A. */
async function masterAndFollower(): Promise<{ a: Cli; b: Cli; aChild: number }> {
  const a = replica('A', A, 'a');
  const aChild = await ws.pid('a.pid', a);
  await a.until(() => ws.lines('a.ticks').length > 0, "A's child to tick");
  const b = replica('B', B, 'b');
  await b.line('stderr', /following master 127\.0\.0\.1:1001/);
  return { a, b, aChild };
}

describe("elect-run-command --run: the dead man's switch", () => {
  it('stops the child of a frozen CLI before the other replica starts its own; after SIGCONT the CLI follows', async () => {
    const { a, b, aChild } = await masterAndFollower();

    a.signal('SIGSTOP'); // the CLI alone: its watchdog and child keep running
    const bChild = await ws.pid('b.pid', b);
    await b.until(() => ws.lines('b.ticks').length > 0, "B's child to tick");
    // A's child was stopped by its watchdog, with SIGTERM (it logged its stop).
    expect(isAlive(aChild)).toBe(false);
    const all = expectNoOverlap();
    expect(all.map((i) => i.who.slice(0, 1))).toEqual(['a', 'b']);
    expect(a.exit).toBeUndefined();

    // Woken up, A knows its term is over: it follows B and starts nothing.
    a.signal('SIGCONT');
    await a.line('stderr', /following master 127\.0\.0\.1:1002/);
    expect(a.stderr.join('\n')).toMatch(/the watchdog stops child .*renew deadline passed/);
    expect(childPids('a')).toEqual(new Set([String(aChild)]));
    expect(isAlive(bChild)).toBe(true);
    expectNoOverlap();

    // And it still works as a replica: when B stops, A takes over with a new child.
    b.signal('SIGTERM');
    expect(await b.waitExit()).toEqual({ code: 0, signal: null }); // the worker exits 0 on SIGTERM
    await a.until(() => childPids('a').size === 2, 'a new child on A');
    await a.until(() => ws.lines('a.ticks').length > 0 && !isAlive(bChild), 'B gone');
    const after = expectNoOverlap();
    expect(after.map((i) => i.who.slice(0, 1))).toEqual(['a', 'b', 'a']);
  });

  it('stops the child of a CLI killed with SIGKILL before the other replica starts its own', async () => {
    const { a, b, aChild } = await masterAndFollower();
    const watchdog = pgrpOf(aChild);
    expect(watchdog).not.toBe(aChild); // the child runs in its watchdog's group
    expect(isAlive(watchdog)).toBe(true);

    a.signal('SIGKILL');
    await a.waitExit();
    // The watchdog sees the pipe close and stops the group at once.
    await waitFor(() => !isAlive(aChild) && !isAlive(watchdog), "A's child and watchdog to end", {
      timeoutMs: WAIT_MS,
    });
    expect(ws.read('b.pid')).toBe('');
    await ws.pid('b.pid', b);
    await b.until(() => ws.lines('b.ticks').length > 0, "B's child to tick");
    expect(expectNoOverlap().map((i) => i.who.slice(0, 1))).toEqual(['a', 'b']);
  });

  it('a watchdog killed from outside: the CLI stops the child itself, reports it and exits 1', async () => {
    const { a, b, aChild } = await masterAndFollower();
    const watchdog = pgrpOf(aChild);
    process.kill(watchdog, 'SIGKILL');
    expect(await a.waitExit()).toEqual({ code: 1, signal: null });
    expect(isAlive(aChild)).toBe(false);
    expect(a.stderr.join('\n')).toMatch(/watchdog of child .* was killed by SIGKILL/);
    await ws.pid('b.pid', b);
    await b.until(() => ws.lines('b.ticks').length > 0, "B's child to tick");
    expectNoOverlap();
  });
});
