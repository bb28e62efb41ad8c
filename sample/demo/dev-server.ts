import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DemoError } from './wait.js';

/** The compiled `doozer-dev-server` bin (dist/lib/bin/doozer-dev-server.js), from dist/sample/demo/. */
export const DEV_SERVER_CLI = new URL('../../lib/bin/doozer-dev-server.js', import.meta.url);
/** Preloaded: the server stops when the demo is gone (see exit-with-parent.ts). */
const EXIT_WITH_PARENT = new URL('./exit-with-parent.js', import.meta.url);
/** The one line the bin prints on stdout once it listens. */
const LISTENING = /^doozer-dev-server listening on (\S+) uri=(\S+)$/;
/** How long a stopped server may take to exit before it gets SIGKILL. */
const STOP_GRACE_MS = 10_000;

/**
 * `doozer-dev-server` (the package's bin) as a child process of the demo,
 * listening on 127.0.0.1 and a free port.
 *
 * It runs in a process group of its own, so that a Ctrl-C in the terminal
 * (which reaches the demo and its replicas) does not stop it before the
 * replicas have resigned: the demo stops it last. Should the demo die
 * without stopping it, the pipe on its stdin closes and it stops on its own.
 */
export class DevServer {
  private constructor(
    private readonly proc: ChildProcess,
    /** `host:port` it listens on. */
    readonly address: string,
    /** `doozer:?ca=host:port`. */
    readonly uri: string,
    /** Resolves once the process has exited. */
    readonly exited: Promise<void>,
  ) {}

  /** The process id. */
  get pid(): number {
    return this.proc.pid ?? 0;
  }

  /**
   * Spawns the bin and resolves once it printed its listening line. Rejects
   * (after killing it) if it exits first, prints something else, or does not
   * listen within `timeoutMs`, or when `signal` aborts.
   */
  static start(timeoutMs: number, signal: AbortSignal): Promise<DevServer> {
    const proc = spawn(
      process.execPath,
      ['--import', EXIT_WITH_PARENT.href, fileURLToPath(DEV_SERVER_CLI), '--listen', '127.0.0.1:0'],
      { stdio: ['pipe', 'pipe', 'pipe'], detached: true },
    );
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
    return new Promise<DevServer>((resolve, reject) => {
      const lines = createInterface({ input: proc.stdout, crlfDelay: Infinity });
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        cleanup();
        if (exit === undefined) proc.kill('SIGKILL');
        // Wait for the exit, so that a failed start leaves no process behind.
        void exited.then(() => reject(err));
      };
      const timer = setTimeout(
        () => fail(new DemoError(`doozer-dev-server did not listen within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onAbort = (): void =>
        fail(
          signal.reason instanceof Error
            ? signal.reason
            : new DemoError('interrupted while starting doozer-dev-server'),
        );
      const onLine = (line: string): void => {
        const m = LISTENING.exec(line);
        if (!m) {
          fail(new DemoError(`unexpected output of doozer-dev-server: ${line}${output()}`));
          return;
        }
        cleanup();
        resolve(new DevServer(proc, m[1]!, m[2]!, exited));
      };
      const onExit = (): void => {
        // Give stdout a moment to deliver a line printed just before the exit.
        setImmediate(() =>
          fail(
            new DemoError(
              `doozer-dev-server exited before listening (${describeExit(exit)})${output()}`,
            ),
          ),
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

  /** SIGTERM (the bin closes the server and exits 0), SIGKILL if it hangs; resolves once it has exited. */
  async stop(): Promise<void> {
    if (this.running) this.proc.kill('SIGTERM');
    const hung = setTimeout(() => this.kill(), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(hung);
  }

  /** SIGKILL now (last resort, on the demo's exit). */
  kill(): void {
    if (this.running) this.proc.kill('SIGKILL');
  }
}

function describeExit(
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined,
): string {
  if (!exit) return 'unknown';
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}
