/**
 * One request of the client through its whole life: queued while the client
 * reconnects, then sent on a connection under a tag, then answered. It may be
 * rejected early (timeout, abort, close); its tag stays reserved on the
 * connection until the server answers, because there is no CANCEL verb.
 */
import type { Request, Response, Verb } from '../wire/index.js';
import { answerError, verbName, type Decode } from './codec.js';
import { DoozerTimeoutError } from './errors.js';

/**
 * The ops armed with each signal. One abort listener per signal, however many
 * requests share it (a `getdir`, a `Promise.all` of GETs): a listener per
 * request would trip Node's MaxListenersExceededWarning and cost more.
 */
const opsBySignal = new WeakMap<AbortSignal, Set<Op>>();

function abortOps(event: Event): void {
  const signal = event.target as AbortSignal;
  const ops = opsBySignal.get(signal);
  opsBySignal.delete(signal);
  if (ops !== undefined) for (const op of [...ops]) op.fail(signal.reason);
}

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
      let ops = opsBySignal.get(signal);
      if (ops === undefined) {
        ops = new Set();
        opsBySignal.set(signal, ops);
        signal.addEventListener('abort', abortOps, { once: true });
      }
      ops.add(this);
    }
    if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
      this.timer = setTimeout(
        () => this.fail(new DoozerTimeoutError(verbName(this.verb), timeoutMs)),
        timeoutMs,
      );
    }
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
    const signal = this.signal;
    if (signal !== undefined) {
      this.signal = undefined;
      const ops = opsBySignal.get(signal);
      if (ops !== undefined && ops.delete(this) && ops.size === 0) {
        opsBySignal.delete(signal);
        signal.removeEventListener('abort', abortOps);
      }
    }
    if (this.queue !== undefined) this.queue.delete(this);
    this.queue = undefined;
  }
}
