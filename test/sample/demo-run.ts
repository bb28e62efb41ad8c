/**
 * One run of the compiled demo (dist/sample/demo.js, built by the global
 * setup) as a child process, for test/sample/demo*.test.ts: its output
 * lines, its exit, and the pids it printed, to check that nothing outlives it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const DEMO = fileURLToPath(new URL('../../dist/sample/demo.js', import.meta.url));
/** Limit of one demo run: it takes a few seconds, but a loaded 2-core machine is slow to boot Nest. */
export const RUN_MS = 100_000;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Whether a process runs (exists and is not a zombie). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/** One run of the demo, in its own process group so that cleanup reaches its replicas too. */
export class DemoRun {
  readonly lines: string[] = [];
  readonly exited: Promise<Exit>;
  private readonly proc: ChildProcess;
  private readonly waiters = new Set<() => void>();
  private exit: Exit | undefined;

  constructor(args: readonly string[], cwd: string, extraEnv: NodeJS.ProcessEnv = {}) {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    for (const k of ['DOOZER_URI', 'DOOZER_BOOT_URI', 'DEMO_SHORT', 'DEMO_VERBOSE']) delete env[k];
    Object.assign(env, extraEnv);
    this.proc = spawn(process.execPath, [DEMO, ...args], {
      env,
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    for (const stream of [this.proc.stdout!, this.proc.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        this.lines.push(line);
        for (const wake of this.waiters) wake();
      });
    }
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        for (const wake of this.waiters) wake();
        resolve(this.exit);
      });
    });
  }

  get output(): string {
    return this.lines.join('\n');
  }

  /** Waits for a line matching `re` (woken by each new line, not polled). */
  line(re: RegExp): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        for (const l of this.lines) {
          const m = re.exec(l);
          if (m) {
            this.waiters.delete(check);
            resolve(m);
            return;
          }
        }
        if (this.exit) {
          this.waiters.delete(check);
          reject(
            new Error(
              `demo exited (${JSON.stringify(this.exit)}) before printing ${re}:\n${this.output}`,
            ),
          );
        }
      };
      this.waiters.add(check);
      check();
    });
  }

  /** The pid of the doozer-dev-server it started, from the line `Doozer    doozer-dev-server on …, pid 1234`. */
  serverPid(): number | undefined {
    for (const l of this.lines) {
      const m = /^Doozer\s+doozer-dev-server on 127\.0\.0\.1:\d+, pid (\d+)\b/.exec(l);
      if (m) return Number(m[1]);
    }
    return undefined;
  }

  /**
   * The etcd or PostgreSQL server it started, the store-server process that
   * runs it and its data directory, from the line
   * `Store     … on 127.0.0.1:PORT, pid 1234 (run by the demo's store-server, pid 1233; data in /tmp/…)`.
   */
  store(): { server: number; host: number; dataDir: string } | undefined {
    for (const l of this.lines) {
      const m =
        /^Store\s+.* on 127\.0\.0\.1:\d+, pid (\d+) \(run by the demo's store-server, pid (\d+); data in (\S+)\)$/.exec(
          l,
        );
      if (m) return { server: Number(m[1]), host: Number(m[2]), dataDir: m[3]! };
    }
    return undefined;
  }

  /** The replicas' pids, from the lines `A  pid 1234  http://…`. */
  replicaPids(): number[] {
    return this.lines.flatMap((l) => {
      const m = /^\s+[ABC]\s+pid (\d+)\s/.exec(l);
      return m ? [Number(m[1])] : [];
    });
  }

  signal(signal: NodeJS.Signals): void {
    this.proc.kill(signal);
  }

  /** `signal` to the demo's whole process group, as a Ctrl-C in its terminal does. */
  signalGroup(signal: NodeJS.Signals): void {
    process.kill(-this.proc.pid!, signal);
  }

  /**
   * SIGKILL to the whole process group (whatever is left of the demo and its
   * replicas) and to the Doozer server, which runs in a group of its own;
   * SIGTERM to a store-server, which then stops its etcd or PostgreSQL (a
   * SIGKILL would leave that behind).
   */
  destroy(): void {
    const server = this.serverPid();
    const host = this.store()?.host;
    const send = (target: number, signal: NodeJS.Signals): void => {
      try {
        process.kill(target, signal);
      } catch {
        // nobody left
      }
    };
    send(-this.proc.pid!, 'SIGKILL');
    if (server && isAlive(server)) send(server, 'SIGKILL');
    if (host && isAlive(host)) send(host, 'SIGTERM');
  }
}

/** The demo's three replicas and its doozer-dev-server have all exited. */
export function expectNothingLeft(demo: DemoRun): void {
  const pids = demo.replicaPids();
  expect(pids).toHaveLength(3);
  expect(pids.filter(isAlive)).toEqual([]);
  const server = demo.serverPid();
  expect(server, demo.output).toBeGreaterThan(0);
  expect(isAlive(server!)).toBe(false);
}
