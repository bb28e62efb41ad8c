/** Small helpers of the election benchmark: time, rounding, percentiles, waiting. */
import { systemClock } from '../../lib/election/index.js';

/** Milliseconds on CLOCK_MONOTONIC (comparable across processes on one machine). */
export const now = (): number => systemClock.now();

export const round = (x: number): number => Math.round(x * 100) / 100;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The nearest-rank percentile `p` (0..100) of `samples`. */
export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return round(
    sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN,
  );
}

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function summary(samples: number[]): Summary {
  return {
    n: samples.length,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    max: round(Math.max(...samples)),
  };
}

/** Waits (polling every millisecond) until `cond()` holds; throws `what` after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = now() + timeoutMs;
  while (!cond()) {
    if (now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(1);
  }
}

/** Runs one figure; a failure becomes `{ error }` in the JSON line instead of ending the run. */
export async function figure<T>(
  what: string,
  run: () => Promise<T>,
): Promise<T | { error: string }> {
  const t0 = now();
  process.stderr.write(`bench:election: ${what}...\n`);
  try {
    const result = await run();
    process.stderr.write(`bench:election: ${what} done in ${Math.round(now() - t0)} ms\n`);
    return result;
  } catch (err) {
    process.stderr.write(`bench:election: ${what} failed: ${String(err)}\n`);
    return { error: err instanceof Error ? err.message : String(err) };
  }
}
