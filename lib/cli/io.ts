/**
 * The process-wide facilities of the CLI (pid, environment, stdout, stderr,
 * signals), behind an interface that tests may replace.
 */

/** The process-wide facilities the CLI uses; tests may replace them. */
export interface CliIo {
  readonly pid: number;
  readonly env: NodeJS.ProcessEnv;
  /** Writes to stdout (`--observe` lines, `--help`). */
  writeOut(text: string): void;
  /** Writes to stderr (log lines, usage errors). */
  writeErr(text: string): void;
  /** Registers a handler of SIGINT/SIGTERM; returns its removal. */
  onSignal(signal: NodeJS.Signals, handler: () => void): () => void;
}

/**
 * A writer to `stream` that stops writing, quietly, once the stream is
 * closed (EPIPE: `elect-run-command --help | head -1`, an observer piped into
 * a reader that went away): nothing to report to, and nothing to crash for.
 */
export function quietWriter(stream: NodeJS.WriteStream): (text: string) => void {
  let closed = false;
  stream.on('error', () => {
    closed = true;
  });
  return (text) => {
    if (closed || stream.destroyed) return;
    stream.write(text);
  };
}

/** The real process's {@link CliIo}. */
export function processIo(): CliIo {
  return {
    pid: process.pid,
    env: process.env,
    writeOut: quietWriter(process.stdout),
    writeErr: quietWriter(process.stderr),
    onSignal: (signal, handler) => {
      process.on(signal, handler);
      return () => void process.off(signal, handler);
    },
  };
}
