/**
 * The `--run` child: started when this process becomes master, stopped
 * (SIGTERM to its whole process group, SIGKILL after a grace period) when
 * mastership ends, so that it never runs beside another replica's copy. Its
 * watchdog stops it at the term's deadline even when this process cannot.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Duplex } from 'node:stream';
import type { CliLogger } from './logger.js';
import { isGroupAlive, shellStatus, signalGroup } from './process-group.js';
import {
  FEED_FD,
  REPORT_FD,
  parseWatchdogReport,
  type WatchdogConfig,
  type WatchdogFeed,
} from './watchdog.js';

/** How long to keep watching a group after SIGKILL before giving up on it. */
const AFTER_KILL_MS = 2_000;
/** How often a stopping group is checked once its leader has exited. */
const POLL_MS = 20;

/** How a child ended. */
export interface ChildExit {
  /** The command's pid, when it was started. */
  readonly pid: number | undefined;
  /** Its exit code, or null when a signal killed it. */
  readonly code: number | null;
  /** The signal that killed it, or null. */
  readonly signal: NodeJS.Signals | null;
  /** What a shell reports: the code, or 128 + the signal number (127/126: could not be started). */
  readonly status: number;
  /**
   * Whether it ended after it was asked to stop: by the supervisor (end of
   * mastership, shutdown) or by its watchdog (the term's deadline passed unfed).
   */
  readonly requested: boolean;
  /** True when the watchdog itself died (killed from outside) without reporting the command's end. */
  readonly watchdogLost?: boolean;
  /** True when its watchdog stopped it because the term's renew deadline passed unfed. */
  readonly deadlinePassed?: boolean;
}

/** Options of a {@link ChildSupervisor}. */
export interface ChildSupervisorOptions {
  /** The program (looked up in PATH) and its arguments; no shell in between. */
  readonly command: string;
  readonly args: readonly string[];
  /** Time between the stop signal and SIGKILL to the group. */
  readonly graceMs: number;
  /** How often the watchdog is fed the term's deadline. */
  readonly feedIntervalMs: number;
  readonly log: CliLogger;
  /** Called when a child exits without having been asked to stop. */
  readonly onUnexpectedExit: (exit: ChildExit) => void;
  /**
   * Called when the watchdog stopped a child because the term's renew
   * deadline passed unfed, once the child is gone (the caller checks
   * whether its term really ended).
   */
  readonly onDeadlineStop?: (exit: ChildExit) => void;
  /** The environment the child's own variables are added to. Default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** The watchdog program. Default {@link watchdogScript}. */
  readonly watchdog?: string;
}

/**
 * The watchdog program next to this module in the compiled package
 * (dist/cjs/cli/watchdog-main.js).
 */
export function watchdogScript(): string {
  return join(typeof __dirname === 'string' ? __dirname : '.', 'watchdog-main.js');
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One started child: its watchdog, which leads the child's process group and
 * relays how the child ended.
 */
class SupervisedChild {
  /** The process group: the watchdog's pid. */
  readonly pid: number | undefined;
  /** The command's own pid, once the watchdog has reported it. */
  commandPid: number | undefined;
  readonly exited: Promise<ChildExit>;
  exit: ChildExit | undefined;
  requested = false;
  /** Whether its watchdog reported stopping it because the deadline passed. */
  deadlinePassed = false;
  private stopped: Promise<ChildExit> | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private killed = false;
  private readonly feeds: Duplex | undefined;

  constructor(
    proc: ChildProcess,
    private readonly label: string,
    private readonly log: CliLogger,
  ) {
    this.pid = proc.pid;
    const channel = proc.stdio[REPORT_FD] as Duplex | null | undefined;
    const feeds = proc.stdio[FEED_FD] as Duplex | null | undefined;
    feeds?.on('error', () => {}); // EPIPE: the watchdog has exited; its reports tell why
    this.feeds = feeds ?? undefined;
    let reported: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let spawnError: string | undefined;
    if (channel) {
      // A dead watchdog (ECONNRESET, EPIPE): 'close' tells. readline re-emits the input's errors.
      channel.on('error', () => {});
      const lines = createInterface({ input: channel });
      lines.on('error', () => {});
      lines.on('line', (line) => {
        log.debug(`watchdog ${this.pid}: ${line}`);
        const r = parseWatchdogReport(line);
        if (r?.kind === 'started') {
          this.commandPid = r.pid;
          log.log(`started ${label} (pid ${r.pid}, process group ${this.pid} led by its watchdog)`);
        } else if (r?.kind === 'spawn-error') {
          spawnError = r.code;
          log.error(`cannot start ${label}: ${r.message}`);
        } else if (r?.kind === 'expired') {
          this.requested = true;
          if (r.why === 'deadline') this.deadlinePassed = true;
          log.warn(
            r.why === 'deadline'
              ? `the watchdog stops ${label} (process group ${this.pid}): the term's renew deadline passed`
              : `the watchdog stops ${label} (process group ${this.pid})`,
          );
        } else if (r?.kind === 'exit') {
          reported = { code: r.code, signal: r.signal };
        }
      });
    }
    this.exited = new Promise<ChildExit>((resolve) => {
      const done = (exit: Omit<ChildExit, 'pid' | 'requested'>): void => {
        if (this.exit) return;
        this.exit = {
          pid: this.commandPid,
          requested: this.requested,
          ...(this.deadlinePassed ? { deadlinePassed: true } : {}),
          ...exit,
        };
        resolve(this.exit);
      };
      // 'close': the watchdog has exited and every report it sent has been read.
      proc.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        if (reported) {
          const { code: c, signal: s } = reported;
          done({ code: c, signal: s, status: shellStatus(c, s) });
        } else if (spawnError !== undefined) {
          done({ code: null, signal: null, status: shellStatus(code, signal) });
        } else {
          const lost = !this.killed && (this.requested ? code !== 0 : true);
          if (lost) {
            const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
            log.error(`the watchdog of ${label} (pid ${this.pid}) ${how} without reporting it`);
          }
          done({ code, signal, status: shellStatus(code, signal), watchdogLost: lost });
        }
      });
      proc.once('error', (err: NodeJS.ErrnoException) => {
        if (this.pid !== undefined) {
          this.log.warn(`${this.label}: ${err.message}`);
          return;
        }
        this.log.error(`cannot start the watchdog of ${this.label}: ${err.message}`);
        done({ code: null, signal: null, status: 1 });
      });
    });
  }

  /** Tells the watchdog that the term now ends at `deadline` (monotonic ms). */
  feed(deadline: number): void {
    const feed: WatchdogFeed = { deadline };
    if (this.feeds?.writable) this.feeds.write(`${JSON.stringify(feed)}\n`);
  }

  /** Whether {@link stop} has been called. */
  get stopping(): boolean {
    return this.stopped !== undefined;
  }

  /** Whether the child or anything left in its group may still run. */
  get alive(): boolean {
    if (this.pid === undefined) return false;
    return !this.exit || isGroupAlive(this.pid);
  }

  /** Sends `signal` to the whole group, if it still exists. */
  signal(signal: NodeJS.Signals): void {
    if (this.pid === undefined) return;
    try {
      signalGroup(this.pid, signal);
    } catch (e) {
      this.log.warn(`cannot send ${signal} to process group ${this.pid}: ${(e as Error).message}`);
    }
  }

  /**
   * Stops the child: `signal` to its group now (unless a stop is already under
   * way), SIGKILL to the group after `graceMs`. Resolves once the child has
   * exited and no process of its group runs any more.
   */
  stop(signal: NodeJS.Signals, graceMs: number): Promise<ChildExit> {
    this.requested = true;
    this.stopped ??= this.runStop(signal, graceMs);
    return this.stopped;
  }

  private async runStop(signal: NodeJS.Signals, graceMs: number): Promise<ChildExit> {
    const pid = this.pid;
    if (pid === undefined || !this.alive) return this.exited;
    this.log.log(
      `stopping ${this.label} (process group ${pid}) with ${signal}; SIGKILL in ${graceMs} ms`,
    );
    this.signal(signal);
    const killAt = Date.now() + graceMs;
    this.killTimer = setTimeout(() => this.kill(), graceMs);
    try {
      for (;;) {
        if (this.exit && !isGroupAlive(pid)) return this.exit;
        if (this.killed && Date.now() > killAt + AFTER_KILL_MS) {
          this.log.error(`process group ${pid} still runs ${AFTER_KILL_MS} ms after SIGKILL`);
          return this.exit ?? { pid, code: null, signal: 'SIGKILL', status: 137, requested: true };
        }
        // Wake up on the leader's exit, or to look at the rest of its group.
        await (this.exit ? delay(POLL_MS) : Promise.race([this.exited, delay(POLL_MS)]));
      }
    } finally {
      clearTimeout(this.killTimer);
    }
  }

  /** SIGKILL to the group, now. */
  kill(): void {
    if (this.killed || this.pid === undefined) return;
    this.killed = true;
    if (!isGroupAlive(this.pid)) return;
    this.log.warn(`${this.label} (process group ${this.pid}) still runs: sending SIGKILL`);
    this.signal('SIGKILL');
  }
}

/**
 * Runs one command while this process is master, under a watchdog (the dead
 * man's switch, see watchdog.ts). The watchdog is spawned detached, as the
 * leader of a process group of its own (so a terminal's Ctrl-C reaches only
 * this process, which forwards it), and starts the command in that group
 * with stdio inherited. Signals to "the child" go to that whole group; the
 * watchdog ignores SIGTERM, SIGINT and SIGHUP, which are the command's.
 */
export class ChildSupervisor {
  private current: SupervisedChild | undefined;
  private readonly children = new Set<SupervisedChild>();

  constructor(private readonly opts: ChildSupervisorOptions) {}

  /** The running child's process group, if one runs. */
  get pid(): number | undefined {
    return this.current && !this.current.exit ? this.current.pid : undefined;
  }

  /** Whether a child has been started and has not exited. */
  get running(): boolean {
    return this.pid !== undefined;
  }

  /**
   * Starts the command with `env` added to the environment, under a watchdog
   * that stops it at `deadline()` (the term's renew deadline, on the
   * monotonic clock) unless fed a later one; it is fed every
   * `feedIntervalMs` until the child has exited. Does nothing more than log
   * a warning if a previous child still runs (it is being stopped; the
   * election waits for it up to its own limit).
   */
  start(env: Readonly<Record<string, string>>, deadline: () => number): void {
    const { command, args, graceMs, log } = this.opts;
    const prev = this.current;
    if (prev?.alive) log.warn(`starting a new child while process group ${prev.pid} still runs`);
    const config: WatchdogConfig = { command, args, graceMs, deadline: deadline() };
    const proc = spawn(
      process.execPath,
      [this.opts.watchdog ?? watchdogScript(), JSON.stringify(config)],
      {
        detached: true,
        stdio: ['inherit', 'inherit', 'inherit', 'pipe', 'pipe'],
        env: { ...(this.opts.env ?? process.env), ...env },
      },
    );
    const child = new SupervisedChild(proc, `child ${JSON.stringify(command)}`, log);
    this.current = child;
    this.children.add(child);
    const feeder = setInterval(() => child.feed(deadline()), this.opts.feedIntervalMs);
    void child.exited.then((exit) => {
      clearInterval(feeder);
      if (exit.pid !== undefined) {
        const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
        log.log(`child (pid ${exit.pid}) ${how}`);
      }
      if (!child.alive) this.children.delete(child);
      if (!exit.requested) this.opts.onUnexpectedExit(exit);
      else if (exit.deadlinePassed) this.opts.onDeadlineStop?.(exit);
    });
  }

  /**
   * Stops every child still running: `signal` to each group now, SIGKILL
   * after the grace period. Resolves with the current child's exit (undefined
   * when none was started since the last stop) once all groups are gone.
   * Idempotent: a stop under way is joined, not restarted.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<ChildExit | undefined> {
    const current = this.current;
    await Promise.all([...this.children].map((c) => c.stop(signal, this.opts.graceMs)));
    for (const c of [...this.children]) if (!c.alive) this.children.delete(c);
    if (this.current === current) this.current = undefined;
    return current?.exit;
  }

  /**
   * Forwards a signal received by this process to every child's group, and
   * stops them as {@link stop} does (with `signal` instead of SIGTERM). A
   * child already being stopped gets the signal again (a second Ctrl-C).
   */
  forward(signal: NodeJS.Signals): Promise<ChildExit | undefined> {
    for (const c of this.children) if (c.stopping && c.alive) c.signal(signal);
    return this.stop(signal);
  }

  /** SIGKILL to every group now, synchronously (for `process.on('exit')`). */
  killAll(): void {
    for (const c of this.children) {
      c.requested = true;
      c.kill();
    }
  }
}
