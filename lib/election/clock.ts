/**
 * The election's only source of time. It is monotonic and local: the election
 * never compares times taken on different machines, and never trusts a
 * timestamp written by another process.
 */
export interface Clock {
  /** Milliseconds on a monotonic clock (any origin). */
  now(): number;
  /** Calls `fn` after `ms` milliseconds (on this clock). */
  setTimer(fn: () => void, ms: number): unknown;
  /** Cancels a timer returned by {@link Clock.setTimer}. */
  clearTimer(handle: unknown): void;
}

/**
 * The default clock: the operating system's monotonic clock
 * (`process.hrtime`). On Linux every process reads the same
 * CLOCK_MONOTONIC, so times of different processes on one machine can be
 * compared (the fault suite relies on that); the election itself never does.
 */
export const systemClock: Clock = {
  now: () => Number(process.hrtime.bigint()) / 1e6,
  setTimer: (fn, ms) => setTimeout(fn, Math.max(0, ms)),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
