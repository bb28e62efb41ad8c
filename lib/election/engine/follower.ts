/**
 * Follows one election through its lock: a read, then the watch from the
 * version read, and after a reset (or a watch that fails) a read again,
 * retried with backoff until it works. A watch that keeps ending soon after
 * it starts (a stream that fails at once) is followed again with the same
 * backoff, so a failing store is never read in a tight loop. Everything it learns goes to its
 * {@link FollowerSink} in store order, synchronously.
 */
import { backoffDelay, type BackoffPolicy } from '../../shared/backoff.js';
import type { ElectionLock, LockRead, LockSnapshot, LockVersion } from '../port.js';
import { describe, type Notifier } from './notifier.js';
import type { Timers } from './timers.js';

/** Where the follower reports. */
export interface FollowerSink {
  /** A fresh read of the record (at start, or after a reset). */
  read(read: LockRead): void;
  /** A change seen by the watch. */
  change(snapshot: LockSnapshot): void;
  /** The follower can no longer say what the store holds, until its next `read`. */
  unsynced(): void;
  /** The lock failed with an error it classifies as fatal. */
  fatal(err: unknown): void;
}

export class Follower {
  private epoch = 0;
  private abort: AbortController | null = null;
  private resyncing: Promise<void> | null = null;
  private stopped = false;
  /** Watches in a row that ended within `retry.maxDelayMs` of their start. */
  private shortWatches = 0;
  private readonly retry: BackoffPolicy;

  constructor(
    private readonly lock: ElectionLock,
    private readonly sink: FollowerSink,
    private readonly timers: Timers,
    private readonly notes: Notifier,
    private readonly timeoutMs: number,
    retryPeriodMs: number,
  ) {
    this.retry = {
      initialDelayMs: Math.min(100, retryPeriodMs),
      maxDelayMs: retryPeriodMs,
      multiplier: 2,
      jitter: 0.5,
    };
  }

  /** The first read; its error is thrown (the election does not start). */
  async start(): Promise<void> {
    await this.readAndFollow();
  }

  /** Reads again and follows from there (after a reset, or a read that found the store lost). */
  resync(): Promise<void> {
    this.sink.unsynced();
    this.resyncing ??= (async () => {
      for (let attempt = 0; !this.stopped; attempt++) {
        try {
          await this.readAndFollow();
          return;
        } catch (err) {
          if (this.stopped) return;
          if (this.lock.classify(err) === 'fatal') return this.sink.fatal(err);
          this.notes.debug(`resync failed: ${describe(err)}`);
          await this.timers.sleep(backoffDelay(this.retry, attempt)).promise;
        }
      }
    })().finally(() => (this.resyncing = null));
    return this.resyncing;
  }

  stop(): void {
    this.stopped = true;
    this.epoch++;
    this.abort?.abort();
  }

  private async readAndFollow(): Promise<void> {
    const epoch = ++this.epoch;
    this.abort?.abort();
    const read = await this.lock.read({ timeoutMs: this.timeoutMs });
    if (this.stopped || epoch !== this.epoch) return;
    this.sink.read(read);
    if (this.stopped || epoch !== this.epoch) return;
    void this.follow(epoch, read.version);
  }

  private async follow(epoch: number, from: LockVersion): Promise<void> {
    const abort = new AbortController();
    this.abort = abort;
    const began = this.timers.now();
    try {
      for await (const ev of this.lock.watch(from, abort.signal)) {
        if (this.stopped || epoch !== this.epoch) return;
        if (ev.kind === 'change') {
          this.sink.change(ev.snapshot);
          continue;
        }
        // (The lock logs what deserves a warning, such as falling behind the history.)
        this.notes.debug(`the watch was reset (${ev.reason}); resyncing`);
        break;
      }
    } catch (err) {
      if (this.stopped || abort.signal.aborted) return;
      if (this.lock.classify(err) === 'fatal') return this.sink.fatal(err);
      this.notes.debug(`watch interrupted: ${describe(err)}`);
    }
    if (this.stopped || abort.signal.aborted || epoch !== this.epoch) return;
    const short = this.timers.now() - began < this.retry.maxDelayMs;
    this.shortWatches = short ? this.shortWatches + 1 : 0;
    if (this.shortWatches > 1) {
      // The second short watch in a row: back off before reading again.
      this.sink.unsynced();
      await this.timers.sleep(backoffDelay(this.retry, this.shortWatches - 2)).promise;
      if (this.stopped || epoch !== this.epoch) return;
    }
    void this.resync();
  }
}
