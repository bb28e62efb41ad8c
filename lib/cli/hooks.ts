/**
 * The `--master-cmd`, `--slave-cmd` and `--error-cmd` hooks: shell commands
 * run one at a time, in the order of the events that triggered them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { CliLogger } from './logger.js';
import { shellStatus } from './process-group.js';

/** The shell that runs hooks, as `/bin/sh -c <command>`. */
export const HOOK_SHELL = '/bin/sh';

/** One hook invocation. */
export interface Hook {
  /** Which flag it comes from, for log lines: `master-cmd`, `slave-cmd`, `error-cmd`. */
  readonly kind: string;
  /** The shell command. */
  readonly command: string;
  /** Variables added to the environment (`MASTER`, ...). */
  readonly env: Readonly<Record<string, string>>;
  /** Positional parameters (`$1`...); when given, the command is run as `<command> "$@"`. */
  readonly args?: readonly string[];
}

/** How a hook ended: `ok`, or why not (`exited with code 3`, `could not be run: ...`). */
export type HookOutcome = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Options of a {@link HookRunner}. */
export interface HookRunnerOptions {
  readonly log: CliLogger;
  /** The name `$0` of the shell running a hook with arguments. */
  readonly argv0: string;
  /** The environment hooks' own variables are added to. Default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** The shell. Default {@link HOOK_SHELL}. */
  readonly shell?: string;
}

/**
 * The shell's arguments for a hook: `-c <command>` for a hook without
 * positional parameters; `-c '<command> "$@"' <argv0> <args...>` otherwise,
 * so that the arguments reach the command unchanged, however they are quoted.
 */
export function hookShellArgs(hook: Hook, argv0: string): string[] {
  if (hook.args === undefined) return ['-c', hook.command];
  return ['-c', `${hook.command} "$@"`, argv0, ...hook.args];
}

interface Queued {
  readonly hook: Hook;
  readonly settle: (outcome: HookOutcome) => void;
}

/**
 * Runs hooks one at a time, in the order they were queued. A hook that
 * fails (non-zero exit, killed, or not startable) is logged; what else
 * happens is the caller's choice ({@link HookRunner.submit} tells it).
 * stdin is closed; stdout and stderr are this process's.
 */
export class HookRunner {
  private queue: Queued[] = [];
  private running: { hook: Hook; proc: ChildProcess } | undefined;
  private pumping = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: HookRunnerOptions) {}

  /** Number of hooks queued or running. */
  get pending(): number {
    return this.queue.length + (this.running ? 1 : 0);
  }

  /** Queues a hook behind those already queued. */
  enqueue(hook: Hook): void {
    void this.submit(hook);
  }

  /**
   * Queues a hook behind those already queued; resolves (never rejects) with
   * how it ended once it has run, or was dropped at shutdown.
   */
  submit(hook: Hook): Promise<HookOutcome> {
    return new Promise<HookOutcome>((settle) => {
      this.queue.push({ hook, settle });
      if (!this.pumping) void this.pump();
    });
  }

  /**
   * Resolves once every queued hook has run. After `timeoutMs`, the running
   * hook is sent SIGTERM and the queued ones are dropped (both logged), and it
   * resolves once the running one has exited.
   */
  async drain(timeoutMs: number): Promise<void> {
    if (this.pending === 0) return;
    const idle = new Promise<void>((r) => this.idleWaiters.push(r));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), timeoutMs);
    });
    const result = await Promise.race([idle, timedOut]);
    clearTimeout(timer);
    if (result !== 'timeout') return;
    const dropped = this.queue.splice(0);
    for (const { hook, settle } of dropped) {
      this.opts.log.warn(`${hook.kind} not run: shutting down`);
      settle({ ok: false, reason: 'not run: shutting down' });
    }
    const running = this.running;
    if (running) {
      this.opts.log.warn(`${running.hook.kind} still runs after ${timeoutMs} ms: sending SIGTERM`);
      running.proc.kill('SIGTERM');
      await idle;
    }
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      for (let next = this.queue.shift(); next; next = this.queue.shift()) {
        next.settle(await this.run(next.hook));
      }
    } finally {
      this.pumping = false;
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private run(hook: Hook): Promise<HookOutcome> {
    const { log } = this.opts;
    return new Promise<HookOutcome>((resolve) => {
      const proc = spawn(this.opts.shell ?? HOOK_SHELL, hookShellArgs(hook, this.opts.argv0), {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...(this.opts.env ?? process.env), ...hook.env },
      });
      this.running = { hook, proc };
      let settled = false;
      const done = (outcome: HookOutcome): void => {
        if (settled) return;
        settled = true;
        this.running = undefined;
        resolve(outcome);
      };
      proc.once('error', (err) => {
        const reason = `could not be run: ${err.message}`;
        log.warn(`${hook.kind} ${reason}`);
        done({ ok: false, reason });
      });
      proc.once('exit', (code, signal) => {
        if (code !== 0) {
          const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
          const reason = `${how} (status ${shellStatus(code, signal)})`;
          log.warn(`${hook.kind} ${reason}`);
          done({ ok: false, reason });
        } else {
          log.debug(`${hook.kind} done`);
          done({ ok: true });
        }
      });
    });
  }
}
