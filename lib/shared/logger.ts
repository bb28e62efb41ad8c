/**
 * One guard for user-supplied loggers: a logger that throws must not break
 * a connection, an election or the process, so each of its methods is
 * wrapped to swallow what it throws (logging is best effort).
 */
type Levels = 'log' | 'info' | 'warn' | 'error' | 'debug';

/** The same logger with every method (of `log`, `info`, `warn`, `error`, `debug` it has) made safe to call. */
export function guardLogger<L extends Partial<Record<Levels, (message: string) => void>>>(
  logger: L,
): L {
  const guarded: Partial<Record<Levels, (message: string) => void>> = {};
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    const fn = logger[level];
    if (typeof fn !== 'function') continue;
    guarded[level] = (message: string): void => {
      try {
        fn.call(logger, message);
      } catch {
        // ignored: logging is best effort
      }
    };
  }
  return guarded as L;
}
