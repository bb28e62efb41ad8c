/**
 * Follows a Doozer store with a plain client, so it works against any Doozer
 * server: read REV, WALK `/**` at that rev, then WAIT on `/**` from rev + 1.
 * When the stream breaks (the connection dropped, or the viewer fell behind
 * the server's history: TOO_LATE) it reads the whole store again at a new
 * rev and goes on from there. A reconnection always reads again rather than
 * resuming: the server may have restarted with a fresh store, whose revs
 * start over.
 */
import { errorMessage } from '../shared/errors.js';
import {
  DoozerConnectionError,
  DoozerTooLateError,
  type DoozerClient,
  type DoozerEvent,
} from '../doozer/index.js';
import type { StoreRead } from './state.js';

/** What the follower feeds. */
export interface StoreSink {
  read(rev: number): StoreRead;
  changed(event: DoozerEvent): void;
  disconnected(reason: string): void;
}

/** Every file, at any depth. */
const ALL = '/**';

/** Pause between failed reads that were not a lost connection (which the client waits out). */
const RETRY_MS = 1000;

export class StoreFollower {
  readonly #stop = new AbortController();
  #loop: Promise<void> | undefined;
  #lastWarning: string | undefined;

  constructor(
    private readonly client: DoozerClient,
    private readonly sink: StoreSink,
    private readonly warn: (message: string) => void,
  ) {}

  /** Reads the store once (errors reject), then follows it in the background. */
  async start(): Promise<void> {
    const rev = await this.#read();
    this.#loop = this.#follow(rev);
  }

  /** Stops following; resolves once the loop has ended. */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async #read(): Promise<number> {
    const signal = this.#stop.signal;
    const rev = await this.client.rev({ signal });
    const read = this.sink.read(rev);
    for await (const entry of this.client.walk(ALL, rev, { signal })) read.file(entry);
    read.done();
    return rev;
  }

  async #follow(from: number): Promise<void> {
    const signal = this.#stop.signal;
    let rev = from;
    while (!signal.aborted) {
      try {
        for await (const ev of this.client.watch(ALL, rev + 1, {
          signal,
          resumeOnReconnect: false,
        })) {
          this.sink.changed(ev);
          rev = ev.rev;
        }
        return; // stopped
      } catch (e) {
        if (signal.aborted) return;
        this.#lost(e);
      }
      rev = await this.#readAgain();
    }
  }

  /**
   * Reads the store again until it works (or the follower stops). Requests
   * made while the client is disconnected wait for its reconnection, so a
   * read fails fast only for another reason: then it is retried after a pause.
   */
  async #readAgain(): Promise<number> {
    const signal = this.#stop.signal;
    for (;;) {
      try {
        const rev = await this.#read();
        this.#lastWarning = undefined;
        return rev;
      } catch (e) {
        if (signal.aborted) return 0;
        if (this.client.state === 'closed') {
          this.warn('the store client was closed; the live view no longer follows the store');
          this.sink.disconnected('the store client was closed');
          this.#stop.abort();
          return 0;
        }
        this.#lost(e);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, RETRY_MS);
          signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
        });
      }
    }
  }

  /** Says why the stream broke (once per cause in a row, not once per retry). */
  #lost(e: unknown): void {
    const message =
      e instanceof DoozerTooLateError
        ? 'fell behind the store history; reading it again'
        : e instanceof DoozerConnectionError
          ? `lost the connection to the store (${e.message}); reading it again once reconnected`
          : `reading the store failed (${errorMessage(e)}); trying again`;
    if (message !== this.#lastWarning) this.warn(message);
    this.#lastWarning = message;
    this.sink.disconnected(message);
  }
}
