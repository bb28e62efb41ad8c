/**
 * The dead man's switch of `--run`: a small process between the CLI and the
 * supervised command. It leads the process group the command runs in, and
 * stops that group (SIGTERM, SIGKILL after the grace period) at the term's
 * renew deadline unless the CLI has fed it a later one, or at once when the
 * CLI is gone. It needs nothing from the CLI to do so: a CLI that is frozen
 * (SIGSTOP, a stalled event loop) or killed cannot keep the command running
 * past its term. See docs/cli.md ("The dead man's switch").
 *
 * The CLI and the watchdog talk over two pipes, one JSON object a line: the
 * CLI sends {@link WatchdogFeed}s on the watchdog's fd 4, the watchdog sends
 * {@link WatchdogReport}s on its fd 3.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { liveGroupMembers, shellStatus, signalGroup } from './process-group.js';

/** The watchdog's end of the pipe of its reports to the CLI. */
export const REPORT_FD = 3;
/**
 * The watchdog's end of the pipe of the CLI's feeds. Separate from the
 * reports: a feed written by a CLI that wakes up after its watchdog exited
 * fails (EPIPE), and that must not cost the CLI the reports still unread.
 */
export const FEED_FD = 4;

/** What the watchdog is started with (its one argument, as JSON). */
export interface WatchdogConfig {
  /** The program (looked up in PATH) and its arguments; no shell in between. */
  readonly command: string;
  readonly args: readonly string[];
  /** Time between SIGTERM and SIGKILL to the group. */
  readonly graceMs: number;
  /** The term's renew deadline, on the monotonic clock of {@link monotonicNow}. */
  readonly deadline: number;
}

/** CLI to watchdog: the term now ends at `deadline` (monotonic ms). Earlier deadlines are ignored. */
export interface WatchdogFeed {
  readonly deadline: number;
}

/** Watchdog to CLI. */
export type WatchdogReport =
  | { readonly kind: 'started'; readonly pid: number }
  | { readonly kind: 'spawn-error'; readonly code: string; readonly message: string }
  /** The watchdog stops the group: the deadline passed unfed, or the CLI is gone. */
  | { readonly kind: 'expired'; readonly why: 'deadline' | 'cli-gone' }
  | { readonly kind: 'exit'; readonly code: number | null; readonly signal: NodeJS.Signals | null };

/**
 * The election engine's default clock (`systemClock`): CLOCK_MONOTONIC on
 * Linux, which every process on the machine reads alike, so a deadline the
 * CLI reads from its term means the same instant here.
 */
export function monotonicNow(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Parses the watchdog's argument; throws naming what is wrong. */
export function parseWatchdogConfig(text: string | undefined): WatchdogConfig {
  const c = JSON.parse(text ?? 'null') as Partial<WatchdogConfig> | null;
  if (
    c === null ||
    typeof c.command !== 'string' ||
    !Array.isArray(c.args) ||
    !c.args.every((a) => typeof a === 'string') ||
    typeof c.graceMs !== 'number' ||
    !(c.graceMs >= 0) ||
    typeof c.deadline !== 'number' ||
    !Number.isFinite(c.deadline)
  ) {
    throw new TypeError('expected {"command", "args", "graceMs", "deadline"}');
  }
  return { command: c.command, args: c.args, graceMs: c.graceMs, deadline: c.deadline };
}

/** Parses one line from the watchdog; `undefined` for anything that is not a report. */
export function parseWatchdogReport(line: string): WatchdogReport | undefined {
  let r: unknown;
  try {
    r = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof r !== 'object' || r === null || !('kind' in r)) return undefined;
  const o = r as Record<string, unknown>;
  switch (o.kind) {
    case 'started':
      return typeof o.pid === 'number' ? { kind: 'started', pid: o.pid } : undefined;
    case 'spawn-error':
      return { kind: 'spawn-error', code: String(o.code), message: String(o.message) };
    case 'expired':
      return o.why === 'deadline' || o.why === 'cli-gone'
        ? { kind: 'expired', why: o.why }
        : undefined;
    case 'exit':
      return {
        kind: 'exit',
        code: typeof o.code === 'number' ? o.code : null,
        signal: typeof o.signal === 'string' ? (o.signal as NodeJS.Signals) : null,
      };
    default:
      return undefined;
  }
}

/** Signals sent to the whole group (by the CLI, or by this watchdog) that are meant for the command. */
const IGNORED: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
/** How often a stopping group is looked at. */
const POLL_MS = 20;

/**
 * Runs the watchdog in this process: starts the command in this process's
 * group (this process must lead one: the CLI spawns it detached) once the
 * deadline is ahead, and stops the group at the deadline, when the CLI goes
 * away, or (what is left of it) when the command exits. Exits with the
 * command's shell status; with 0 (after an `expired` report) when it ends
 * before it has started the command.
 */
export function runWatchdog(config: WatchdogConfig): void {
  const self = process.pid;
  let child: ChildProcess | undefined;
  // Before the command has started, nothing would receive them: they stop this process.
  const onGroupSignal = (): void => {
    if (!child) notStarted('deadline');
  };
  for (const s of IGNORED) process.on(s, onGroupSignal);
  const channel = new Socket({ fd: FEED_FD, readable: true, writable: false });
  const send = (report: WatchdogReport): void => {
    const data = `${JSON.stringify(report)}\n`;
    for (let tries = 0; tries < 100; tries++) {
      try {
        writeSync(REPORT_FD, data);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return; // the CLI is gone
      }
    }
  };

  let deadline = config.deadline;
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;
  /** A past deadline seen, to be checked again once pending feeds are read. */
  let recheck = false;
  let childExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  const finish = (): void => {
    const e = childExit ?? { code: 0, signal: null };
    process.exit(shellStatus(e.code, e.signal));
  };
  const othersGone = (): boolean => {
    const members = liveGroupMembers(self);
    return members !== undefined && members.every((pid) => pid === self);
  };
  const poll = (): void => {
    if (childExit && othersGone()) finish();
    else setTimeout(poll, POLL_MS);
  };
  /** Ends this process before it has started the command. */
  const notStarted = (why: 'deadline' | 'cli-gone'): void => {
    send({ kind: 'expired', why });
    process.exit(0);
  };
  const stop = (why: 'deadline' | 'cli-gone' | undefined): void => {
    if (!child) return notStarted(why ?? 'deadline');
    if (stopping) return;
    stopping = true;
    clearTimeout(timer);
    if (why) send({ kind: 'expired', why });
    signalGroup(self, 'SIGTERM'); // this process ignores it
    // SIGKILL to the group ends this process too; its report is already sent.
    setTimeout(() => signalGroup(self, 'SIGKILL'), config.graceMs);
    poll();
  };
  const arm = (): void => {
    clearTimeout(timer);
    if (stopping) return;
    const left = deadline - monotonicNow();
    if (left > 0) {
      timer = setTimeout(arm, left); // checks the clock again when it fires
    } else if (!recheck) {
      // Past the deadline, perhaps only because this process was slow (a
      // spawn on a loaded machine) while later feeds wait unread in the
      // pipe: let one turn of the event loop read them, then decide.
      recheck = true;
      setImmediate(() => {
        recheck = false;
        if (deadline - monotonicNow() <= 0) stop('deadline');
        else arm();
      });
    } // else a check is already due on the next turn
  };

  const lines = createInterface({ input: channel });
  lines.on('error', () => {}); // readline re-emits the channel's errors; see cliGone
  lines.on('line', (line) => {
    let feed: Partial<WatchdogFeed>;
    try {
      feed = JSON.parse(line) as Partial<WatchdogFeed>;
    } catch {
      return;
    }
    if (typeof feed.deadline === 'number' && feed.deadline > deadline) {
      deadline = feed.deadline;
      if (child) arm();
      else if (deadline > monotonicNow()) startChild();
    }
  });
  const cliGone = (): void => stop('cli-gone');
  channel.once('end', cliGone);
  channel.once('close', cliGone);
  channel.on('error', cliGone);

  const startChild = (): void => {
    let proc: ChildProcess;
    try {
      proc = spawn(config.command, [...config.args], { stdio: 'inherit' });
    } catch (e) {
      send({ kind: 'spawn-error', code: 'EINVAL', message: (e as Error).message });
      process.exit(1);
    }
    child = proc;
    proc.once('error', (err: NodeJS.ErrnoException) => {
      if (proc.pid !== undefined) return;
      send({ kind: 'spawn-error', code: String(err.code), message: err.message });
      process.exit(err.code === 'ENOENT' ? 127 : err.code === 'EACCES' ? 126 : 1);
    });
    if (proc.pid !== undefined) send({ kind: 'started', pid: proc.pid });
    proc.once('exit', (code, signal) => {
      childExit = { code, signal };
      send({ kind: 'exit', code, signal });
      if (othersGone()) finish();
      else stop(undefined); // what it left behind in the group
    });
    arm();
  };

  // A deadline already past when this process gets here (it started up
  // slowly) is no reason to give up: the CLI may have renewed the term
  // meanwhile, and its next feed tells. Until then nothing runs.
  if (monotonicNow() < deadline) startChild();
}
