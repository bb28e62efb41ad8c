/**
 * Runs the compiled `elect-run-command` (dist/, built by the global setup) as
 * child processes, collects their output lines, and cleans up after each
 * test: every CLI, every `--run` child whose pid a test wrote to a `*.pid`
 * file in the workspace (and its watchdog's group), the workspace itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../support/wait.js';

/** The compiled CLI, as the package's `bin` runs it. */
export const CLI = fileURLToPath(
  new URL('../../dist/cjs/cli/elect-run-command.js', import.meta.url),
);

/** Short election timings: a kill grace of 640 ms (800 ms gap minus 20%). */
export const TIMING = {
  leaseMs: 2000,
  renewDeadlineMs: 1200,
  retryPeriodMs: 300,
} as const;
export const TIMING_FLAGS = [
  '--lease-ms',
  String(TIMING.leaseMs),
  '--renew-deadline-ms',
  String(TIMING.renewDeadlineMs),
  '--retry-period-ms',
  String(TIMING.retryPeriodMs),
];

/** Upper bound of any wait for an event: generous, for a loaded 2-core machine. */
export const WAIT_MS = 30_000;

/** How a process ended. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** The environment of the test runner without the variables the CLI reads. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const k of ['DOOZER_URI', 'DOOZER_BOOT_URI', 'ETCD_URI', 'POSTGRES_URI'])
    if (!(k in extra)) delete env[k];
  return env;
}

/**
 * Whether a process runs: it exists and is not a zombie (an orphan that
 * nobody reaps, where PID 1 does not reap, is dead all the same).
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false; // gone meanwhile
  }
}

/** The process group of `pid` (from /proc), `undefined` when it is gone. */
export function groupOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    return pgrp > 1 ? pgrp : undefined;
  } catch {
    return undefined;
  }
}

/** One running CLI. */
export class Cli {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  exit: Exit | undefined;
  readonly exited: Promise<Exit>;
  private readonly proc: ChildProcess;

  constructor(
    readonly label: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv,
  ) {
    // Its own process group, so that cleanup reaches its hooks too.
    this.proc = spawn(process.execPath, [CLI, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => this.stdout.push(l));
    createInterface({ input: this.proc.stderr! }).on('line', (l) => this.stderr.push(l));
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Closes the read end of its stdout: its next write there fails with EPIPE. */
  closeStdout(): void {
    this.proc.stdout?.destroy();
  }

  /** Everything it printed, for failure messages. */
  transcript(): string {
    return `--- ${this.label} stdout:\n${this.stdout.join('\n')}\n--- ${this.label} stderr:\n${this.stderr.join('\n')}`;
  }

  /** Waits for a line of `stream` matching `re`; fails early if the process exits first. */
  async line(stream: 'stdout' | 'stderr', re: RegExp): Promise<RegExpMatchArray> {
    const lines = this[stream];
    let match: RegExpMatchArray | null = null;
    await this.until(() => {
      for (const l of lines) if ((match = re.exec(l))) return true;
      return false;
    }, `${this.label} to print ${re} on ${stream}`);
    return match!;
  }

  /** Waits until `cond()` holds; fails early (with the transcript) if the process exits first. */
  async until(cond: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
    try {
      await waitFor(() => cond() || this.exit !== undefined, what, { timeoutMs });
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${this.transcript()}`, { cause: e });
    }
    if (!cond()) {
      throw new Error(
        `${this.label} exited (${JSON.stringify(this.exit)}) before ${what}\n${this.transcript()}`,
      );
    }
  }

  /** Waits for the exit, failing after `timeoutMs`. */
  async waitExit(timeoutMs = WAIT_MS): Promise<Exit> {
    try {
      await waitFor(() => this.exit !== undefined, `${this.label} to exit`, { timeoutMs });
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${this.transcript()}`, { cause: e });
    }
    return this.exit!;
  }

  signal(signal: NodeJS.Signals): void {
    this.proc.kill(signal);
  }

  /** SIGKILL to its process group (unless it exited), then waits for it and closes its pipes. */
  async destroy(): Promise<void> {
    if (this.exit === undefined) {
      try {
        process.kill(-this.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await this.exited;
    }
    this.proc.stdout?.destroy();
    this.proc.stderr?.destroy();
  }
}

/** A temporary directory and the CLIs of one test. */
export class Workspace {
  readonly dir = mkdtempSync(join(tmpdir(), 'elect-run-command-'));
  private readonly clis: Cli[] = [];

  constructor(private readonly env: NodeJS.ProcessEnv) {}

  /** Starts a CLI with the workspace's environment (plus `env`). */
  start(label: string, args: readonly string[], env: Record<string, string> = {}): Cli {
    const cli = new Cli(label, args, { ...this.env, ...env });
    this.clis.push(cli);
    return cli;
  }

  /** A path in the workspace. */
  path(name: string): string {
    return join(this.dir, name);
  }

  /** A file's content, `''` when it does not exist (yet). */
  read(name: string): string {
    try {
      return readFileSync(this.path(name), 'utf8');
    } catch {
      return '';
    }
  }

  /** The lines of a file, without the empty last one. */
  lines(name: string): string[] {
    return this.read(name).split('\n').filter(Boolean);
  }

  /** The pid that `cli`'s `--run` child wrote to a file, once it is there. */
  async pid(name: string, cli: Cli): Promise<number> {
    await cli.until(() => /^\d+\n/.test(this.read(name)), `a pid in ${name}`);
    return Number(this.read(name).trim());
  }

  /** Kills and reaps every CLI, then every process group named in a `*.pid` file; removes the directory. */
  async cleanup(): Promise<void> {
    await Promise.all(this.clis.map((c) => c.destroy()));
    for (const f of readdirSync(this.dir).filter((n) => n.endsWith('.pid'))) {
      const pid = Number(this.read(f).trim());
      if (!Number.isInteger(pid) || pid <= 1) continue;
      // Its own group, and the group it runs in (a --run child's: its watchdog's).
      for (const target of [-pid, -(groupOf(pid) ?? pid), pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
