/**
 * Long work in slices: the server never holds the event loop for more than
 * about {@link SLICE_MS} with one piece of work (a fan-out to many waiters,
 * one connection's pipeline, a walk of a large tree). Between slices it
 * yields (`setImmediate`), so every other socket is read and answered.
 */
import { Deque } from './deque.js';

/** Time one slice of work may take before it yields to the event loop. */
export const SLICE_MS = 2;

/** `performance.now()` past which the slice started now should yield. */
export function sliceDeadline(): number {
  return performance.now() + SLICE_MS;
}

/**
 * Items run in order, in slices: a slice runs items until they cost at
 * least `minUnits` and its time is up, then the rest waits for the next
 * turn of the event loop. (The cost floor keeps small batches whole, so
 * their order against other work does not depend on the machine's load.)
 */
export class SlicedQueue<T> {
  private readonly items = new Deque<T>();
  private scheduled: NodeJS.Immediate | undefined;

  constructor(
    /** Runs one item and says what it cost (1 for an ordinary item). */
    private readonly run: (item: T) => number,
    private readonly minUnits = 64,
  ) {}

  /** Items not run yet. */
  get length(): number {
    return this.items.length;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** Runs one slice now; the rest, if any, on a later turn. */
  drain(): void {
    const deadline = sliceDeadline();
    let units = 0;
    for (let item = this.items.shift(); item !== undefined; item = this.items.shift()) {
      units += this.run(item);
      if (this.items.length > 0 && units >= this.minUnits && performance.now() > deadline) {
        this.scheduled ??= setImmediate(() => {
          this.scheduled = undefined;
          this.drain();
        });
        return;
      }
    }
  }

  /** Drops every item not run yet. */
  clear(): void {
    this.items.clear();
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
  }
}

/** A request that may take more than one slice (a walk of a large tree). */
export interface Job {
  /** Works until it is done or `deadline` passed; true once it has answered. */
  step(deadline: number): boolean;
}
