import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DemoError } from './wait.js';

/** The compiled `doozer-dev-server` bin (dist/lib/bin/doozer-dev-server.js), from dist/sample/demo/. */
export const DEV_SERVER_CLI = new URL('../../lib/bin/doozer-dev-server.js', import.meta.url);
/** The demo's etcd / PostgreSQL server host (store-server.ts), next to this file. */
export const STORE_SERVER_CLI = new URL('./store-server.js', import.meta.url);
/** Preloaded: the server stops when the demo is gone (see exit-with-parent.ts). */
const EXIT_WITH_PARENT = new URL('./exit-with-parent.js', import.meta.url);

/** What to run, and the one line it prints on stdout once it serves. */
export interface ServerSpec {
  /** For messages: `doozer-dev-server`, `store-server`. */
  readonly name: string;
  /** The script and its arguments (run with `node`). */
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Its listening line; named groups `address`, `uri` and, optionally, `pid`
   * (the server's own pid) and `data` (its data directory).
   */
  readonly listening: RegExp;
  /** How long it may take to stop before it gets SIGKILL. */
  readonly stopGraceMs: number;
  /**
   * The signal of {@link ServerProcess.kill}, the last resort on the demo's
   * exit: SIGKILL for a server that is the process itself, SIGTERM for a host
   * that must stop the server it runs (SIGKILL would leave that behind).
   */
  readonly lastResort: NodeJS.Signals;
}

/** `doozer-dev-server --listen 127.0.0.1:0`, stopping with the demo. */
export const DEV_SERVER: ServerSpec = {
  name: 'doozer-dev-server',
  args: [
    '--import',
    EXIT_WITH_PARENT.href,
    fileURLToPath(DEV_SERVER_CLI),
    '--listen',
    '127.0.0.1:0',
  ],
  listening: /^doozer-dev-server listening on (?<address>\S+) uri=(?<uri>\S+)$/,
  stopGraceMs: 10_000,
  lastResort: 'SIGKILL',
};

/**
 * A server the demo runs as a child process, listening on 127.0.0.1 and a
 * free port: the `doozer-dev-server` bin, or store-server.ts (etcd or
 * embedded PostgreSQL).
 *
 * It runs in a process group of its own, so that a Ctrl-C in the terminal
 * (which reaches the demo and its replicas) does not stop it before the
 * replicas have resigned: the demo stops it last, by closing the pipe on its
 * stdin. Should the demo die without stopping it, that pipe closes too and
 * it stops on its own.
 */
export class ServerProcess {
  private constructor(
    private readonly spec: ServerSpec,
    private readonly proc: ChildProcess,
    /** `host:port` it listens on. */
    readonly address: string,
    /** What a client connects with (it may hold a password: never print it). */
    readonly uri: string,
    /** The server's own pid: the process itself, or the one its host runs. */
    readonly serverPid: number,
    /** The server's data directory, where it has one on disk (`''` otherwise). */
    readonly dataDir: string,
    /** Resolves once the process has exited. */
    readonly exited: Promise<void>,
  ) {}

  /** The process id. */
  get pid(): number {
    return this.proc.pid ?? 0;
  }

  /**
   * Spawns the server and resolves once it printed its listening line.
   * Rejects (after stopping it) if it exits first, prints something else, or
   * does not listen within `timeoutMs`, or when `signal` aborts.
   */
  static start(spec: ServerSpec, timeoutMs: number, signal: AbortSignal): Promise<ServerProcess> {
    const { name } = spec;
    const proc = spawn(process.execPath, spec.args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      env: spec.env ?? process.env,
    });
    proc.stdin?.on('error', () => undefined); // it exited: nothing to tell it
    const stderr: string[] = [];
    createInterface({ input: proc.stderr, crlfDelay: Infinity }).on('line', (l) => {
      stderr.push(l);
      if (stderr.length > 12) stderr.shift();
    });
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const exited = new Promise<void>((resolve) => {
      proc.once('exit', (code, sig) => {
        exit = { code, signal: sig };
        resolve();
      });
      proc.once('error', (err) => {
        stderr.push(`spawn failed: ${err.message}`);
        exit = { code: null, signal: null };
        resolve();
      });
    });
    const output = (): string =>
      stderr.length === 0 ? '' : `; its output:\n    ${stderr.join('\n    ')}`;
    return new Promise<ServerProcess>((resolve, reject) => {
      const lines = createInterface({ input: proc.stdout, crlfDelay: Infinity });
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        cleanup();
        // Stop it the way it stops (a host stops what it started), SIGKILL if it hangs;
        // wait for the exit, so that a failed start leaves no process behind.
        if (exit === undefined) {
          proc.kill(spec.lastResort);
          if (spec.lastResort !== 'SIGKILL') {
            const hung = setTimeout(() => proc.kill('SIGKILL'), spec.stopGraceMs);
            void exited.then(() => clearTimeout(hung));
          }
        }
        void exited.then(() => reject(err));
      };
      const timer = setTimeout(
        () => fail(new DemoError(`${name} did not listen within ${timeoutMs} ms${output()}`)),
        timeoutMs,
      );
      const onAbort = (): void =>
        fail(
          signal.reason instanceof Error
            ? signal.reason
            : new DemoError(`interrupted while starting ${name}`),
        );
      const onLine = (line: string): void => {
        const groups = spec.listening.exec(line)?.groups;
        if (!groups?.address || !groups.uri) {
          fail(new DemoError(`unexpected output of ${name}: ${line}${output()}`));
          return;
        }
        cleanup();
        const serverPid = groups.pid ? Number(groups.pid) : (proc.pid ?? 0);
        const { address, uri, data = '' } = groups;
        resolve(new ServerProcess(spec, proc, address, uri, serverPid, data, exited));
      };
      const onExit = (): void => {
        // Give stdout a moment to deliver a line printed just before the exit.
        setImmediate(() =>
          fail(new DemoError(`${name} exited before listening (${describeExit(exit)})${output()}`)),
        );
      };
      function cleanup(): void {
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        lines.off('line', onLine);
        proc.off('exit', onExit);
      }
      lines.on('line', onLine);
      proc.once('exit', onExit);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Whether the process is still running. */
  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Closes the pipe on its stdin (it stops and exits 0), SIGKILL if it hangs; resolves once it has exited. */
  async stop(): Promise<void> {
    if (this.running) this.proc.stdin?.end();
    const hung = setTimeout(() => this.proc.kill('SIGKILL'), this.spec.stopGraceMs);
    await this.exited;
    clearTimeout(hung);
  }

  /** The last resort, on the demo's exit: see {@link ServerSpec.lastResort}. */
  kill(): void {
    if (this.running) this.proc.kill(this.spec.lastResort);
  }
}

function describeExit(
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined,
): string {
  if (!exit) return 'unknown';
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}
