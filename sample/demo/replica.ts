import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Subject, type Observable } from 'rxjs';
import type { ElectionStatus } from '../src/election.controller.js';
import { DemoError } from './wait.js';

/** The compiled sample application, next to this file in dist/sample/. */
export const SAMPLE_MAIN = new URL('../src/main.js', import.meta.url);
/** Preloaded into each replica: it stops when the demo is gone. */
const EXIT_WITH_PARENT = new URL('./exit-with-parent.js', import.meta.url);

/** One log line of a replica (the sample logs JSON lines with `LOG_FORMAT=json`). */
export interface ReplicaLog {
  /** Nest's level (`log`, `warn`, `error`, `debug`…), or `stdout`/`stderr` for a line that is not JSON. */
  readonly level: string;
  /** The logger's context (`Election`, `LeaderJob`, `MasterElection`…), `''` for a raw line. */
  readonly context: string;
  readonly message: string;
}

/** How a replica process ended. */
export interface ReplicaExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** `performance.now()` when the demo saw it. */
  readonly at: number;
}

const READY = /\bready port=(\d+) .*\baddress=(\S+)/;
const JOB_RUN = /^leader-only job run #\d+ \(fencing token (\d+)\)$/;

/** One replica of the sample application, run as a child process. */
export class Replica {
  /** The HTTP port, known once ready. */
  port = 0;
  /** The advertised address (`127.0.0.1:<port>`), known once ready. */
  address = '';
  /** `performance.now()` when the ready line arrived. */
  readyAt = 0;
  /** Fencing tokens of the leader-only job's runs, in order. */
  readonly jobRuns: number[] = [];
  /** Set once the process has exited. */
  exit: ReplicaExit | undefined;
  /** Resolves once the replica logged its ready line; rejects if it exits first. */
  readonly ready: Promise<void>;
  /** Resolves when the process has exited and its output has been read. */
  readonly exited: Promise<ReplicaExit>;
  /** Every log line. */
  readonly logs$: Observable<ReplicaLog>;
  /** Whether the demo stopped the replica itself (so its exit is expected). */
  stopping = false;

  private readonly proc: ChildProcess;
  private readonly logs = new Subject<ReplicaLog>();
  /** The last lines, to explain an unexpected exit. */
  private readonly tail: string[] = [];

  constructor(
    /** A short name for humans: A, B, C. */
    readonly label: string,
    env: NodeJS.ProcessEnv,
  ) {
    this.logs$ = this.logs.asObservable();
    // stdin: a pipe the demo never writes to; see exit-with-parent.ts.
    this.proc = spawn(
      process.execPath,
      ['--import', EXIT_WITH_PARENT.href, fileURLToPath(SAMPLE_MAIN)],
      { env, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.proc.stdin?.on('error', () => undefined); // the replica exited: nothing to tell it
    this.exited = new Promise((resolve) => {
      // Timed at 'exit'; resolved at 'close', once its output has been read to the end.
      let at = 0;
      this.proc.once('exit', () => (at = performance.now()));
      this.proc.once('close', (code, signal) => {
        this.exit = { code, signal, at: at || performance.now() };
        resolve(this.exit);
      });
      // A failed spawn emits 'error' and no 'exit'.
      this.proc.once('error', (err) => {
        this.tail.push(`spawn failed: ${err.message}`);
        this.exit = { code: null, signal: null, at: performance.now() };
        resolve(this.exit);
      });
    });
    // Complete the log stream only once both pipes are drained.
    let open = 2;
    for (const [stream, raw] of [
      [this.proc.stdout, 'stdout'],
      [this.proc.stderr, 'stderr'],
    ] as const) {
      const lines = createInterface({ input: stream!, crlfDelay: Infinity });
      lines.on('line', (line) => this.line(line, raw));
      lines.once('close', () => {
        if (--open === 0) this.logs.complete();
      });
    }
    this.ready = new Promise<void>((resolve, reject) => {
      const sub = this.logs$.subscribe({
        next: (log) => {
          const m = READY.exec(log.message);
          if (!m) return;
          this.port = Number(m[1]);
          this.address = m[2] ?? '';
          this.readyAt = performance.now();
          sub.unsubscribe();
          resolve();
        },
        complete: () =>
          reject(new DemoError(`replica ${label} exited before it was ready${this.lastLines()}`)),
      });
    });
    this.ready.catch(() => undefined); // the demo awaits it; never an unhandled rejection
  }

  /** The process id. */
  get pid(): number {
    return this.proc.pid ?? 0;
  }

  /** Whether the process is still running. */
  get running(): boolean {
    return this.exit === undefined;
  }

  /** Sends `signal`; the exit that follows is expected. */
  kill(signal: NodeJS.Signals): void {
    this.stopping = true;
    if (this.running) this.proc.kill(signal);
  }

  /** `GET /election`, or `undefined` when the replica does not answer. */
  async status(): Promise<ElectionStatus | undefined> {
    if (!this.port || !this.running) return undefined;
    try {
      const res = await fetch(`http://127.0.0.1:${this.port}/election`, {
        signal: AbortSignal.timeout(2000),
      });
      return res.ok ? ((await res.json()) as ElectionStatus) : undefined;
    } catch {
      return undefined;
    }
  }

  /** The last lines of output, for an error message (`''` if none). */
  lastLines(): string {
    return this.tail.length === 0 ? '' : `; its last output:\n    ${this.tail.join('\n    ')}`;
  }

  private line(line: string, stream: 'stdout' | 'stderr'): void {
    if (line.trim() === '') return;
    let log: ReplicaLog = { level: stream, context: '', message: line };
    if (line.startsWith('{')) {
      try {
        const json = JSON.parse(line) as Record<string, unknown>;
        const str = (v: unknown, fallback: string): string =>
          typeof v === 'string' ? v : v === undefined ? fallback : JSON.stringify(v);
        log = {
          level: str(json.level, stream),
          context: str(json.context, ''),
          message: str(json.message, ''),
        };
      } catch {
        // not JSON after all: keep the raw line
      }
    }
    this.tail.push(`${log.level} ${log.context ? `[${log.context}] ` : ''}${log.message}`);
    if (this.tail.length > 12) this.tail.shift();
    const run = log.context === 'LeaderJob' ? JOB_RUN.exec(log.message) : null;
    if (run) this.jobRuns.push(Number(run[1]));
    this.logs.next(log);
  }
}
