/**
 * Log lines of `elect-run-command`: one line each, on stderr, with a prefix
 * naming the program and its pid, so that they stand apart from the hooks'
 * and the child's output (stdout is for `--observe` and for them).
 */
import type { DoozerLogger } from '../doozer/types.js';
import type { ElectionLogger } from '../election/index.js';

/** The logger of the CLI; it serves the election engine and the Doozer client too. */
export interface CliLogger extends ElectionLogger, DoozerLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
}

/**
 * Replaces the value of every `sk=` parameter of `doozer:` URIs in `text`
 * with `***`. The Doozer client never puts a secret into its messages; this
 * guards what the CLI prints from other sources (command-line echoes).
 */
export function redactSecrets(text: string): string {
  // An already redacted `sk=***` (as DoozerUri prints it) is kept as it is,
  // with what follows it: `sk=***: message` must not lose its colon.
  return text.replace(/([?&]sk=)(?:\*\*\*(?=[:&\s'"]|$)|[^&\s'"]*)/g, '$1***');
}

/**
 * A logger writing `prefix: [level: ]message` lines to `write`. Debug lines
 * are written only when `verbose`. Every line goes through
 * {@link redactSecrets}.
 *
 * @param prefix e.g. `elect-run-command[1234]`.
 * @param write receives whole lines, newline included (e.g. a stderr writer).
 * @param verbose whether `debug` lines are written.
 * @param secrets also cuts the password of the etcd or PostgreSQL URI out of every line.
 */
export function createCliLogger(
  prefix: string,
  write: (line: string) => void,
  verbose: boolean,
  secrets?: { redact(text: string): string },
): CliLogger {
  const line = (level: string, message: string): void => {
    const text = redactSecrets(message);
    write(`${prefix}: ${level}${secrets ? secrets.redact(text) : text}\n`);
  };
  return {
    log: (m) => line('', m),
    warn: (m) => line('warning: ', m),
    error: (m) => line('error: ', m),
    debug: (m) => {
      if (verbose) line('debug: ', m);
    },
  };
}

/**
 * The election engine's view of the CLI logger: its informational messages
 * (who is master, step-downs, which the CLI reports itself) are debug lines;
 * its notices for the operator (`info`), warnings and errors are shown.
 */
export function engineLogger(log: CliLogger): ElectionLogger {
  return {
    log: (m) => log.debug(m),
    info: (m) => log.log(m),
    warn: (m) => log.warn(m),
    error: (m) => log.error(m),
    debug: (m) => log.debug(m),
  };
}
