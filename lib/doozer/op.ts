/**
 * One request of the client through its whole life: queued while the client
 * reconnects, then sent on a connection under a tag, then answered. It may be
 * rejected early (timeout, abort, close); its tag stays reserved on the
 * connection until the server answers, because there is no CANCEL verb.
 */
import type { Request, Response, Verb } from '../wire/index.js';
import { answerError, verbName, type Decode } from './codec.js';
import { DoozerTimeoutError } from './errors.js';

/** The longest delay `setTimeout` honours; longer timeouts mean "never". */
const MAX_TIMER_MS = 0x7fffffff;

export class Op {
  /** True once the promise has settled (the tag may still be reserved). */
  done = false;
  /** The queue holding this op while it waits for a connection. */
  queue: Set<Op> | undefined = undefined;
  readonly promise: Promise<unknown>;
  private resolveFn!: (value: unknown) => void;
  private rejectFn!: (reason: unknown) => void;
  private timer: ReturnType<typeof setTimeout> | undefined = undefined;
  private signal: AbortSignal | undefined = undefined;

  constructor(
    /** The request; its tag is filled in when it is sent. */
    readonly req: Request,
    readonly verb: Verb,
    /** Path or glob, for error messages. */
    readonly path: string | undefined,
    private readonly decode: Decode,
  ) {
    this.promise = new Promise((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
  }

  /** Arms the timeout and the abort signal. Call once, right after construction. */
  arm(timeoutMs: number | undefined, signal: AbortSignal | undefined): void {
    if (signal !== undefined) {
      if (signal.aborted) {
        this.fail(signal.reason);
        return;
      }
      this.signal = signal;
      signal.addEventListener('abort', this, { once: true });
    }
    if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) {
      this.timer = setTimeout(
        () => this.fail(new DoozerTimeoutError(verbName(this.verb), timeoutMs)),
        timeoutMs,
      );
    }
  }

  /** Abort listener (the op is its own listener object: no closure per request). */
  handleEvent(): void {
    this.fail(this.signal?.reason);
  }

  /** Settles with the answer: the decoded result, or the typed error it carries. */
  answer(resp: Response): void {
    if (this.done) return;
    const error = answerError(resp, this.verb, this.path);
    if (error !== undefined) {
      this.fail(error);
      return;
    }
    let value: unknown;
    try {
      value = this.decode(resp, this.verb);
    } catch (e) {
      this.fail(e);
      return;
    }
    this.finish();
    this.resolveFn(value);
  }

  /** Rejects (once). */
  fail(reason: unknown): void {
    if (this.done) return;
    this.finish();
    this.rejectFn(reason);
  }

  private finish(): void {
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.signal !== undefined) this.signal.removeEventListener('abort', this);
    this.signal = undefined;
    if (this.queue !== undefined) this.queue.delete(this);
    this.queue = undefined;
  }
}
