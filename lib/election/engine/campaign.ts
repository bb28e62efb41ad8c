/**
 * Running for master and deposing a silent master: the runner's two
 * election writes, and what their answers change.
 */
import type { LockTerm } from '../port.js';
import type { Decision } from './decide.js';
import type { ElectionRunner } from './runner.js';
import { ActiveTerm } from './term.js';

export class Campaign {
  /** Binary exponential backoff of the jitter window (x2 per lost race, /2 per win). */
  contention = 1;

  constructor(private readonly r: ElectionRunner) {}

  /** Runs for master: exactly one of any number of concurrent creators wins. */
  create(d: Extract<Decision, { kind: 'create' }>): void {
    const r = this.r;
    r.phase = { kind: 'campaigning' };
    const start = r.now;
    r.spawn(async () => {
      let result;
      try {
        result = await r.lock.create(d.basis, r.call());
      } catch (err) {
        if (r.phase.kind === 'campaigning') r.phase = { kind: 'following' };
        // It may have landed (an answer lost): read before writing against the same version again.
        if (r.snapshot?.version.key === d.basis.key) r.staleKey = d.basis.key;
        r.flushHeldBack();
        r.failed('run for master', err);
        return;
      }
      r.sampleRtt(start);
      if (result.kind === 'lost') {
        // The winner's record is on its way in the watch.
        this.contention = Math.min(this.contention * 2, 64);
        if (r.phase.kind === 'campaigning') r.phase = { kind: 'following' };
        if (r.snapshot?.version.key === d.basis.key) r.staleKey = d.basis.key;
        r.backoffUntil = r.now + r.jitterMs();
        r.flushHeldBack();
        r.evaluate();
        r.publish();
        return;
      }
      this.contention = Math.max(1, this.contention / 2);
      this.won(result.term, start);
    });
  }

  private won(lockTerm: LockTerm, start: number): void {
    const r = this.r;
    r.rememberOwn(lockTerm.termId);
    this.wonTerm(lockTerm, start);
    r.flushHeldBack();
  }

  private wonTerm(lockTerm: LockTerm, start: number): void {
    const r = this.r;
    const term = new ActiveTerm(lockTerm, start, r.opts.renewDeadlineMs, r.opts.clock);
    if (r.phase.kind !== 'campaigning' || !term.inForce()) {
      // Closing, stopped or too late: give it back without announcing it.
      r.notes.debug(`won term ${term.token} while ${r.phase.kind}; giving it back`);
      if (r.phase.kind === 'campaigning') r.phase = { kind: 'following' };
      void r.master.addCleanup(lockTerm);
      r.evaluate();
      r.publish();
      return;
    }
    const seen = r.snapshot?.record;
    if (seen?.termId === term.termId && seen.state === 'held') term.confirmed = true;
    r.phase = { kind: 'master', term };
    r.abstain = null;
    r.master.begin(term, start);
  }

  /** Replaces a master that has been silent for `leaseMs` (or never proved it was alive). */
  depose(d: Extract<Decision, { kind: 'depose' }>): void {
    const r = this.r;
    r.phase = { kind: 'deposing' };
    const start = r.now;
    r.spawn(async () => {
      let result;
      try {
        result = await r.lock.depose(d.version, r.call());
      } catch (err) {
        if (r.phase.kind === 'deposing') r.phase = { kind: 'following' };
        if (r.snapshot?.version.key === d.version.key) r.staleKey = d.version.key;
        r.failed('depose the master', err);
        return;
      }
      r.sampleRtt(start);
      if (r.phase.kind === 'deposing') r.phase = { kind: 'following' };
      if (result === 'deposed') {
        r.notes.warn(
          `deposed ${d.holder || 'the master'} (term ${d.token}): no renewal seen for ${r.opts.leaseMs} ms`,
        );
        // We saw it first: run for master at once, once the watch shows the end of its term.
        r.skipJitter = true;
        if (r.snapshot?.version.key === d.version.key) r.deposedKey = d.version.key;
      } else {
        r.backoffUntil = r.now + r.jitterMs();
        if (r.snapshot?.version.key === d.version.key) r.staleKey = d.version.key;
      }
      r.evaluate();
      r.publish();
    });
  }
}
