/** The pure rules, case by case: decide(view, phase, now, options) and judgeTerm(). */
import { describe, expect, it } from 'vitest';
import {
  decide,
  isFree,
  jitterWindow,
  type ElectionView,
  type Phase,
  type TermFacts,
} from '../../../lib/election/engine/index.js';
import type { LockRecord, LockRecordState } from '../../../lib/election/port.js';

const ME = 'me';
const LEASE = 10_000;
const O = { leaseMs: LEASE, respectLeaselessMaster: false };
const T0 = 1_000_000;
const following: Phase = { kind: 'following' };

const record = (state: LockRecordState, over: Partial<LockRecord> = {}): LockRecord => ({
  state,
  holder: '10.0.0.2:80',
  holderId: 'other',
  token: 7,
  termId: 't7',
  ...over,
});

function view(r: LockRecord | null, over: Partial<ElectionView> = {}): ElectionView {
  return {
    lockId: ME,
    capabilities: { expiry: 'observer', absentProvesNoMaster: false },
    participating: true,
    synced: true,
    snapshot: { version: { key: 'v1' }, record: r, liveness: 'l1' },
    livenessSeenAt: T0,
    backoffUntil: 0,
    abstain: null,
    holding: new Set(),
    deposedKey: null,
    staleKey: null,
    ...over,
  };
}

const term = (over: Partial<TermFacts> = {}): TermFacts => ({
  token: 7,
  termId: 't7',
  validUntil: T0 + 7000,
  confirmed: true,
  ...over,
});
const master = (over: Partial<TermFacts> = {}): Phase => ({ kind: 'master', term: term(over) });

describe('decide: who may run, and when', () => {
  it('does nothing while not following, not synced, passive or before the first read', () => {
    const v = view(null);
    for (const kind of ['campaigning', 'deposing', 'closing', 'stopped'] as const) {
      expect(decide(v, { kind }, T0 + LEASE, O)).toEqual({ kind: 'none' });
    }
    expect(decide(view(null, { synced: false }), following, T0 + LEASE, O).kind).toBe('none');
    expect(decide(view(null, { participating: false }), following, T0 + LEASE, O).kind).toBe(
      'none',
    );
    expect(decide(view(null, { snapshot: null }), following, T0 + LEASE, O).kind).toBe('none');
  });

  it('waits out a missing record for leaseMs unless the store says absence proves no master', () => {
    expect(decide(view(null), following, T0 + LEASE - 1, O)).toEqual({
      kind: 'wait',
      until: T0 + LEASE,
    });
    expect(decide(view(null), following, T0 + LEASE, O)).toEqual({
      kind: 'create',
      basis: { key: 'v1' },
    });
    const proves = view(null, { capabilities: { expiry: 'observer', absentProvesNoMaster: true } });
    expect(decide(proves, following, T0, O).kind).toBe('create');
  });

  it('takes a released record at once', () => {
    expect(decide(view(record('released')), following, T0, O).kind).toBe('create');
  });

  it('waits out a term ended by someone else from the last liveness change; its own ended term is free unless held back', () => {
    const ended = view(record('ended'));
    expect(decide(ended, following, T0 + LEASE - 1, O).kind).toBe('wait');
    expect(decide(ended, following, T0 + LEASE, O).kind).toBe('create');
    const own = view(record('ended', { holderId: ME }));
    expect(decide(own, following, T0, O).kind).toBe('create');
    const held = view(record('ended', { holderId: ME }), { holding: new Set(['t7']) });
    expect(decide(held, following, T0, O).kind).toBe('wait');
    expect(isFree(held)).toBe(false);
  });

  it('deposes a held or unleased master after leaseMs of silence, not before', () => {
    for (const state of ['held', 'unleased'] as const) {
      const v = view(record(state));
      expect(decide(v, following, T0 + LEASE - 1, O)).toEqual({ kind: 'wait', until: T0 + LEASE });
      expect(decide(v, following, T0 + LEASE, O)).toEqual({
        kind: 'depose',
        version: { key: 'v1' },
        holder: '10.0.0.2:80',
        token: 7,
      });
    }
  });

  it('follows an unleased master forever with respectLeaselessMaster', () => {
    const v = view(record('unleased'));
    expect(decide(v, following, T0 + 100 * LEASE, { ...O, respectLeaselessMaster: true })).toEqual({
      kind: 'none',
    });
    // (A leased master is still deposed when silent.)
    expect(
      decide(view(record('held')), following, T0 + LEASE, { ...O, respectLeaselessMaster: true })
        .kind,
    ).toBe('depose');
  });

  it('with store expiry never deposes for silence and never takes an ended term; a missing record is free', () => {
    const caps = { expiry: 'store', absentProvesNoMaster: true } as const;
    expect(
      decide(view(record('held'), { capabilities: caps }), following, T0 + 9 * LEASE, O).kind,
    ).toBe('none');
    expect(
      decide(view(record('ended'), { capabilities: caps }), following, T0 + 9 * LEASE, O).kind,
    ).toBe('none');
    expect(decide(view(null, { capabilities: caps }), following, T0, O).kind).toBe('create');
  });

  it('backs off, abstains after a resignation, and waits for its own depose to show', () => {
    const free = record('released');
    expect(decide(view(free, { backoffUntil: T0 + 5 }), following, T0, O)).toEqual({
      kind: 'wait',
      until: T0 + 5,
    });
    const abstain = { until: T0 + LEASE, afterToken: 7 };
    expect(decide(view(free, { abstain }), following, T0, O)).toEqual({
      kind: 'wait',
      until: T0 + LEASE,
    });
    expect(decide(view(free, { abstain }), following, T0 + LEASE, O).kind).toBe('create');
    // Abstaining does not stop it from replacing a dead master.
    expect(decide(view(record('held'), { abstain }), following, T0 + LEASE, O).kind).toBe('depose');
    expect(decide(view(record('held'), { deposedKey: 'v1' }), following, T0 + LEASE, O).kind).toBe(
      'none',
    );
  });

  it('reads again instead of writing against a version a write of ours found out of date', () => {
    expect(decide(view(record('released'), { staleKey: 'v1' }), following, T0, O)).toEqual({
      kind: 'read',
    });
    expect(decide(view(record('released'), { staleKey: 'v0' }), following, T0, O).kind).toBe(
      'create',
    );
  });
});

describe('judgeTerm (decide in the master phase)', () => {
  it('keeps a term while its record is held, until the renew deadline (exclusive)', () => {
    const v = view(record('held'));
    expect(decide(v, master(), T0 + 6999, O)).toEqual({ kind: 'none' });
    expect(decide(v, master(), T0 + 7000, O)).toMatchObject({
      kind: 'step-down',
      reason: 'renew-deadline',
    });
  });

  it('steps down when its term is ended (forced election), released or changed by another', () => {
    expect(decide(view(record('ended')), master(), T0, O)).toMatchObject({
      reason: 'election-changed',
    });
    expect(decide(view(record('released')), master(), T0, O)).toMatchObject({
      reason: 'lease-lost',
    });
    expect(decide(view(record('unleased')), master(), T0, O)).toMatchObject({
      reason: 'lease-lost',
    });
  });

  it('steps down when a confirmed term is replaced; an unconfirmed one ignores older records', () => {
    const newer = view(record('held', { termId: 't9', token: 9, holder: '10.0.0.3:80' }));
    expect(decide(newer, master(), T0, O)).toMatchObject({
      kind: 'step-down',
      reason: 'election-changed',
      message: 'the election now names 10.0.0.3:80',
    });
    const sameToken = view(record('held', { termId: 'other-lease' }));
    expect(decide(sameToken, master(), T0, O)).toMatchObject({ reason: 'lease-lost' });
    expect(decide(view(null), master(), T0, O)).toMatchObject({ reason: 'election-changed' });
    const older = view(record('released', { termId: 't5', token: 5 }));
    expect(decide(older, master({ confirmed: false }), T0, O)).toEqual({ kind: 'none' });
    expect(decide(view(null), master({ confirmed: false }), T0, O)).toEqual({ kind: 'none' });
  });
});

describe('jitterWindow', () => {
  it('is the option when set; otherwise 4 x RTT (>= 20 ms) x contention, at most retryPeriodMs / 2', () => {
    expect(jitterWindow({ electionJitterMs: 0, retryPeriodMs: 2000 }, 50, 8)).toBe(0);
    expect(jitterWindow({ electionJitterMs: undefined, retryPeriodMs: 2000 }, 1, 1)).toBe(20);
    expect(jitterWindow({ electionJitterMs: undefined, retryPeriodMs: 2000 }, 10, 2)).toBe(80);
    expect(jitterWindow({ electionJitterMs: undefined, retryPeriodMs: 2000 }, 100, 64)).toBe(1000);
  });
});
