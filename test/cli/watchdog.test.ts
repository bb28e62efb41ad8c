/**
 * The `--run` watchdog on its own: the compiled program (dist/cjs), started
 * as the CLI starts it (detached, reports on fd 3, feeds on fd 4), with a
 * real command; the pure helpers of the CLI's child environment; numeric flags.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { childEnvironment, uriWithoutSecret } from '../../lib/cli/child-env.js';
import { milliseconds, parseCliArgs, UsageError } from '../../lib/cli/options.js';
import {
  monotonicNow,
  parseWatchdogConfig,
  parseWatchdogReport,
  type WatchdogConfig,
  type WatchdogReport,
} from '../../lib/cli/watchdog.js';
import { parseDoozerUri } from '../../lib/doozer/uri.js';
import { waitFor } from '../support/wait.js';
import { WAIT_MS, isAlive } from './harness.js';

const WATCHDOG = fileURLToPath(new URL('../../dist/cjs/cli/watchdog-main.js', import.meta.url));

/** A started watchdog, its reports, and a way to feed it. */
class Watchdog {
  readonly reports: WatchdogReport[] = [];
  readonly proc: ChildProcess;
  exit: { code: number | null } | undefined;

  constructor(config: WatchdogConfig) {
    this.proc = spawn(process.execPath, [WATCHDOG, JSON.stringify(config)], {
      detached: true,
      stdio: ['ignore', 'inherit', 'inherit', 'pipe', 'pipe'],
    });
    const reports = this.proc.stdio[3] as NodeJS.ReadableStream;
    createInterface({ input: reports }).on('line', (l) => {
      const r = parseWatchdogReport(l);
      if (r) this.reports.push(r);
    });
    (this.proc.stdio[4] as Writable).on('error', () => {});
    this.proc.once('close', (code) => (this.exit = { code }));
  }

  feed(deadline: number): void {
    (this.proc.stdio[4] as Writable).write(`${JSON.stringify({ deadline })}\n`);
  }

  /** Closes the feed pipe, as a CLI that dies does. */
  hangUp(): void {
    (this.proc.stdio[4] as Writable).destroy();
  }

  kinds(): string[] {
    return this.reports.map((r) => (r.kind === 'expired' ? `expired:${r.why}` : r.kind));
  }

  async exited(): Promise<{ code: number | null }> {
    await waitFor(() => this.exit !== undefined, 'the watchdog to exit', { timeoutMs: WAIT_MS });
    return this.exit!;
  }

  destroy(): void {
    if (this.exit === undefined && this.proc.pid) {
      try {
        process.kill(-this.proc.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

let dir: string;
const dogs: Watchdog[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'watchdog-'));
});

afterEach(async () => {
  for (const d of dogs.splice(0)) {
    d.destroy();
    await d.exited();
  }
  rmSync(dir, { recursive: true, force: true });
});

/** A command that writes its pid to `pid`, then a line to `ticks` every 10 ms. */
function ticker(extraScript = ''): WatchdogConfig['args'] {
  return [
    '-c',
    `echo $$ > ${join(dir, 'pid')}; ${extraScript} while :; do echo t >> ${join(dir, 'ticks')}; sleep 0.01; done`,
  ];
}

function start(deadlineInMs: number, args = ticker(), graceMs = 300): Watchdog {
  const d = new Watchdog({ command: 'sh', args, graceMs, deadline: monotonicNow() + deadlineInMs });
  dogs.push(d);
  return d;
}

const ticks = (): number => {
  try {
    return readFileSync(join(dir, 'ticks'), 'utf8').split('\n').length - 1;
  } catch {
    return 0;
  }
};
const pid = (): number => Number(readFileSync(join(dir, 'pid'), 'utf8').trim());

describe('the --run watchdog', () => {
  it('keeps the command running while fed, and stops it once the feeds stop', async () => {
    // Deadlines leave the watchdog time to start up on a loaded machine.
    const firstDeadline = monotonicNow() + 2_000;
    const d = start(2_000);
    await waitFor(() => d.kinds().includes('started'), 'the start report', { timeoutMs: WAIT_MS });
    // Fed well past the first deadline: still running after it.
    const feeder = setInterval(() => d.feed(monotonicNow() + 1_000), 50);
    try {
      await waitFor(
        () => monotonicNow() > firstDeadline + 500 || d.exit !== undefined,
        'the first deadline to pass',
        {
          timeoutMs: WAIT_MS,
        },
      );
      expect(d.exit).toBeUndefined();
      expect(d.kinds()).toEqual(['started']);
    } finally {
      clearInterval(feeder);
    }
    const child = pid();
    expect(await d.exited()).toEqual({ code: 143 }); // sh killed by SIGTERM
    expect(d.kinds()).toEqual(['started', 'expired:deadline', 'exit']);
    expect(d.reports.at(-1)).toEqual({ kind: 'exit', code: null, signal: 'SIGTERM' });
    expect(isAlive(child)).toBe(false);
    expect(ticks()).toBeGreaterThan(0);
  });

  it('ignores feeds of an earlier deadline', async () => {
    const d = start(2_000);
    await waitFor(() => d.kinds().includes('started'), 'the start report', { timeoutMs: WAIT_MS });
    d.feed(monotonicNow() - 10_000);
    expect(await d.exited()).toEqual({ code: 143 });
    expect(d.kinds()).toEqual(['started', 'expired:deadline', 'exit']);
  });

  it('stops the command at once when the CLI goes away (its feed pipe closes)', async () => {
    const d = start(60_000);
    await waitFor(() => d.kinds().includes('started'), 'the start report', { timeoutMs: WAIT_MS });
    d.hangUp();
    expect(await d.exited()).toEqual({ code: 143 });
    expect(d.kinds()).toEqual(['started', 'expired:cli-gone', 'exit']);
  });

  it('SIGKILLs a command that ignores SIGTERM, after the grace period', async () => {
    const d = start(2_000, ticker('trap "" TERM;'), 200);
    expect(await d.exited()).toEqual({ code: null }); // the group's SIGKILL ends the watchdog too
    expect(d.kinds()).toEqual(['started', 'expired:deadline']);
    expect(isAlive(pid())).toBe(false);
  });

  it('started past its deadline, it waits for a feed of a deadline still ahead before it starts the command', async () => {
    const d = start(-1);
    d.feed(monotonicNow() - 1); // later than the first, but past as well
    d.feed(monotonicNow() + 60_000); // a renewal the CLI saw meanwhile
    await waitFor(() => d.kinds().includes('started'), 'the start report', { timeoutMs: WAIT_MS });
    await waitFor(() => ticks() > 0, 'the command to run', { timeoutMs: WAIT_MS });
    d.hangUp();
    expect(await d.exited()).toEqual({ code: 143 });
    expect(d.kinds()).toEqual(['started', 'expired:cli-gone', 'exit']);
  });

  it('started past its deadline and never fed, it never starts the command', async () => {
    const d = start(-1);
    d.feed(monotonicNow() - 1);
    d.hangUp(); // the CLI goes away
    expect(await d.exited()).toEqual({ code: 0 });
    expect(d.kinds()).toEqual(['expired:cli-gone']);
    expect(ticks()).toBe(0);
  });

  it('relays the status of a command that exits by itself; a missing one is a spawn error, 127', async () => {
    const ok = start(60_000, ['-c', 'exit 7']);
    expect(await ok.exited()).toEqual({ code: 7 });
    expect(ok.reports.at(-1)).toEqual({ kind: 'exit', code: 7, signal: null });
    const missing = new Watchdog({
      command: join(dir, 'no-such-program'),
      args: [],
      graceMs: 100,
      deadline: monotonicNow() + 60_000,
    });
    dogs.push(missing);
    expect(await missing.exited()).toEqual({ code: 127 });
    expect(missing.reports).toEqual([
      expect.objectContaining({ kind: 'spawn-error', code: 'ENOENT' }),
    ]);
  });

  it('refuses a bad configuration', () => {
    expect(() => parseWatchdogConfig(undefined)).toThrow(TypeError);
    expect(() =>
      parseWatchdogConfig('{"command":"x","args":[1],"graceMs":1,"deadline":1}'),
    ).toThrow(TypeError);
    expect(parseWatchdogReport('not json')).toBeUndefined();
    expect(parseWatchdogReport('{"kind":"expired","why":"bored"}')).toBeUndefined();
  });
});

describe("the hooks' and the child's environment", () => {
  const uri = parseDoozerUri('doozer:?ca=127.0.0.1:8046&ca=[::1]:9&sk=p%40ss%26word');

  it('drops sk= by default and replaces what the environment had', () => {
    expect(uriWithoutSecret(uri)).toBe('doozer:?ca=127.0.0.1:8046&ca=[::1]:9');
    const env = childEnvironment(
      { DOOZER_URI: 'doozer:?ca=x&sk=old', DOOZER_BOOT_URI: 'doozer:?ca=b&sk=boot', PATH: '/bin' },
      { doozerUri: uri, doozerBootUri: undefined, passDoozerSecret: false },
    );
    expect(env).toEqual({ DOOZER_URI: 'doozer:?ca=127.0.0.1:8046&ca=[::1]:9', PATH: '/bin' });
  });

  it('passes the secret (as it parses back) when asked, for the boot URI too', () => {
    const env = childEnvironment(
      {},
      { doozerUri: uri, doozerBootUri: 'doozer:?ca=b:1&sk=boot', passDoozerSecret: true },
    );
    expect(env.DOOZER_URI).toBe('doozer:?ca=127.0.0.1:8046&ca=[::1]:9&sk=p%40ss%26word');
    expect(env.DOOZER_BOOT_URI).toBe('doozer:?ca=b:1&sk=boot');
    const noSecret = childEnvironment(
      {},
      { doozerUri: uri, doozerBootUri: 'doozer:?ca=b:1&sk=boot', passDoozerSecret: false },
    );
    expect(noSecret.DOOZER_BOOT_URI).toBe('doozer:?ca=b:1');
  });
});

describe('numeric flags', () => {
  it('take decimal numbers only', () => {
    expect(milliseconds('1500')).toBe(1500);
    expect(milliseconds('2.5')).toBe(2.5);
    for (const bad of ['0x10', '1e3', '0b1', ' 5', '5 ', '', '+5', '1_000', 'Infinity']) {
      expect(() => milliseconds(bad), bad).toThrow(/decimal number of milliseconds/);
    }
  });

  it('make a usage error naming the flag: --lease-ms 0x10 is no 16 ms lease', () => {
    const parse = (argv: string[]): unknown =>
      parseCliArgs(
        argv,
        { DOOZER_URI: 'doozer:?ca=127.0.0.1:8046' },
        { pid: 1, writeOut: () => {} },
      );
    expect(() => parse(['--lease-ms', '0x10'])).toThrow(UsageError);
    expect(() => parse(['--retry-period-ms', '1e3'])).toThrow(/--retry-period-ms.*decimal/);
    expect(parse(['--lease-ms', '16000'])).toMatchObject({ timing: { leaseMs: 16_000 } });
  });
});
