/**
 * The `--run` child: started when this process becomes master, stopped
 * (SIGTERM to its whole process group, SIGKILL after a grace period) when
 * mastership ends, so that it never runs beside another replica's copy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { CliLogger } from './logger.js';
import { isGroupAlive, shellStatus, signalGroup } from './process-group.js';

/** How long to keep watching a group after SIGKILL before giving up on it. */
const AFTER_KILL_MS = 2_000;
/** How often a stopping group is checked once its leader has exited. */
const POLL_MS = 20;

/** How a child ended. */
export interface ChildExit {
  readonly pid: number | undefined;
  /** Its exit code, or null when a signal killed it. */
  readonly code: number | null;
  /** The signal that killed it, or null. */
  readonly signal: NodeJS.Signals | null;
  /** What a shell reports: the code, or 128 + the signal number (127/126: could not be started). */
  readonly status: number;
  /** Whether it ended after the supervisor asked it to stop (end of mastership, shutdown). */
  readonly requested: boolean;
}

/** Options of a {@link ChildSupervisor}. */
export interface ChildSupervisorOptions {
  /** The program (looked up in PATH) and its arguments; no shell in between. */
  readonly command: string;
  readonly args: readonly string[];
  /** Time between the stop signal and SIGKILL to the group. */
  readonly graceMs: number;
  readonly log: CliLogger;
  /** Called when a child exits without having been asked to stop. */
  readonly onUnexpectedExit: (exit: ChildExit) => void;
  /** The environment the child's own variables are added to. Default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One started child and its process group. */
class SupervisedChild {
  readonly pid: number | undefined;
  readonly exited: Promise<ChildExit>;
  exit: ChildExit | undefined;
  requested = false;
  private stopped: Promise<ChildExit> | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private killed = false;

  constructor(
    proc: ChildProcess,
    private readonly label: string,
    private readonly log: CliLogger,
  ) {
    this.pid = proc.pid;
    this.exited = new Promise<ChildExit>((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null, status: number): void => {
        if (this.exit) return;
        this.exit = { pid: this.pid, code, signal, status, requested: this.requested };
        resolve(this.exit);
      };
      proc.once('exit', (code, signal) => done(code, signal, shellStatus(code, signal)));
      proc.once('error', (err: NodeJS.ErrnoException) => {
        if (this.pid !== undefined) {
          this.log.warn(`${this.label}: ${err.message}`);
          return;
        }
        // Could not be started: report it as a shell would (127 not found, 126 not executable).
        this.log.error(`cannot start ${this.label}: ${err.message}`);
        done(null, null, err.code === 'ENOENT' ? 127 : err.code === 'EACCES' ? 126 : 1);
      });
    });
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
 * Runs one command while this process is master. The child is spawned
 * detached, as the leader of its own process group (so a terminal's Ctrl-C
 * reaches only this process, which forwards it), with stdio inherited.
 */
export class ChildSupervisor {
  private current: SupervisedChild | undefined;
  private readonly children = new Set<SupervisedChild>();

  constructor(private readonly opts: ChildSupervisorOptions) {}

  /** The running child's pid, if one runs. */
  get pid(): number | undefined {
    return this.current && !this.current.exit ? this.current.pid : undefined;
  }

  /** Whether a child has been started and has not exited. */
  get running(): boolean {
    return this.pid !== undefined;
  }

  /**
   * Starts the command with `env` added to the environment. Does nothing
   * more than log a warning if a previous child still runs (it is being
   * stopped; the election waits for it up to its own limit).
   */
  start(env: Readonly<Record<string, string>>): void {
    const { command, args, log } = this.opts;
    const prev = this.current;
    if (prev?.alive) log.warn(`starting a new child while process group ${prev.pid} still runs`);
    const proc = spawn(command, [...args], {
      detached: true,
      stdio: 'inherit',
      env: { ...(this.opts.env ?? process.env), ...env },
    });
    const child = new SupervisedChild(proc, `child ${JSON.stringify(command)}`, log);
    this.current = child;
    this.children.add(child);
    if (child.pid !== undefined)
      log.log(`started child ${JSON.stringify(command)} (pid ${child.pid})`);
    void child.exited.then((exit) => {
      if (exit.pid !== undefined) {
        const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
        log.log(`child (pid ${exit.pid}) ${how}`);
      }
      if (!child.alive) this.children.delete(child);
      if (!exit.requested) this.opts.onUnexpectedExit(exit);
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
