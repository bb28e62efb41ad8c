/**
 * The runner's timers on the election clock: one per name (setting a name
 * again replaces it), sleeps that end early when the runner stops, and a
 * bound for promises that may never settle.
 */
import type { Clock } from '../clock.js';

export class Timers {
  private readonly handles = new Map<string, unknown>();
  private readonly sleepers = new Set<() => void>();
  private seq = 0;
  private closed = false;

  constructor(private readonly clock: Clock) {}

  /** The clock's time, in ms. */
  now(): number {
    return this.clock.now();
  }

  /** Calls `fn` after `ms` (at least 0), replacing a timer of the same name. */
  set(name: string, ms: number, fn: () => void): void {
    if (this.closed) return;
    this.clear(name);
    const handle = this.clock.setTimer(
      () => {
        if (this.handles.get(name) !== handle) return;
        this.handles.delete(name);
        if (!this.closed) fn();
      },
      Math.max(0, ms),
    );
    this.handles.set(name, handle);
  }

  clear(name: string): void {
    const h = this.handles.get(name);
    if (h === undefined) return;
    this.clock.clearTimer(h);
    this.handles.delete(name);
  }

  /** Resolves after `ms`, or at once when the timers are closed. */
  sleep(ms: number): { readonly promise: Promise<void>; cancel(): void } {
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => (wake = resolve));
    if (this.closed) {
      wake();
      return { promise, cancel: () => {} };
    }
    const name = `sleep-${++this.seq}`;
    const done = (): void => {
      this.sleepers.delete(done);
      this.clear(name);
      wake();
    };
    this.sleepers.add(done);
    this.set(name, ms, done);
    return {
      promise,
      cancel: () => {
        this.sleepers.delete(done);
        this.clear(name);
      },
    };
  }

  /** Waits for `p`, at most `ms`; returns false when the time ran out first. */
  async bound(p: Promise<unknown>, ms: number): Promise<boolean> {
    let timedOut = false;
    const timer = this.sleep(ms);
    await Promise.race([
      p,
      timer.promise.then(() => {
        timedOut = true;
      }),
    ]);
    timer.cancel();
    return !timedOut;
  }

  /** Cancels every timer and wakes every sleeper; later calls do nothing. */
  close(): void {
    this.closed = true;
    for (const name of [...this.handles.keys()]) this.clear(name);
    for (const wake of [...this.sleepers]) wake();
    this.sleepers.clear();
  }
}
