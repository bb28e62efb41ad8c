import type { Clock } from '../election/clock.js';

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

/**
 * A clock that moves only when told to, for tests of time-dependent election
 * logic: `advance(ms)` runs every timer due by then, in time order.
 */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers = new Map<number, Timer>();

  constructor(start = 1_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), seq: id, fn });
    return id;
  }

  clearTimer(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Timers not yet run. */
  get pending(): number {
    return this.timers.size;
  }

  /**
   * Moves time forward by `ms` without running any timer, as a process frozen
   * by the OS sees it when it wakes; the next `advance()` runs what fell due.
   */
  jump(ms: number): void {
    this.t += ms;
  }

  /** Moves time forward by `ms`, running due timers in order (timers they set that fall due run too). */
  advance(ms: number): void {
    const target = this.t + ms;
    for (;;) {
      let next: [number, Timer] | undefined;
      for (const entry of this.timers) {
        if (
          entry[1].at <= target &&
          (!next ||
            entry[1].at < next[1].at ||
            (entry[1].at === next[1].at && entry[1].seq < next[1].seq))
        ) {
          next = entry;
        }
      }
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = target;
  }
}
