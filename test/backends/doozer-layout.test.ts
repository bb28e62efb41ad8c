/** The Doozer layout's pure functions: names, bodies, records, keys and liveness. */
import { describe, expect, it } from 'vitest';
import {
  checkAddress,
  checkElectionName,
  electionGlob,
  electionPath,
  filesOf,
  heldLease,
  isOwnHeldLease,
  leasePath,
  livenessOf,
  NO_FILES,
  parseLease,
  recordOf,
  releasedLease,
  versionKey,
  type ElectionFiles,
} from '../../lib/backends/doozer/layout.js';
import { ElectionConfigError } from '../../lib/election/errors.js';

const ME = { holder: '10.0.0.1:80', id: 'aaaa' };
const OTHER = { holder: '10.0.0.2:80', id: 'bbbb' };
const nobodyCreated = { id: ME.id, createdElectionRev: () => false };

const files = (
  election: [number, string] | null,
  lease: [number, string] = [0, ''],
): ElectionFiles =>
  filesOf(election ? { rev: election[0], text: election[1] } : { rev: 0, text: '' }, {
    rev: lease[0],
    text: lease[1],
  });

describe('Doozer layout: paths and names', () => {
  it("uses the Go package's election path, the lease beside it, and one glob for both", () => {
    expect(electionPath('jobs')).toBe('/ns/service/master/jobs');
    expect(leasePath('jobs')).toBe('/ns/service/master-lease/jobs');
    expect(electionGlob('jobs')).toBe('/ns/service/master*/jobs');
  });

  it('accepts one path component as a name and rejects anything else, naming the option', () => {
    for (const good of ['jobs', 'a.b-c', 'X9']) expect(checkElectionName(good)).toBe(good);
    for (const bad of ['', 'a/b', '/jobs', 'a b', '*', 'é', 'x\n', 7, null]) {
      expect(() => checkElectionName(bad)).toThrow(ElectionConfigError);
    }
    expect(() => checkElectionName('a/b')).toThrow(
      expect.objectContaining({
        option: 'name',
        message: expect.stringContaining('/ns/service/master/') as string,
      }),
    );
  });

  it('checks the address written to the election file', () => {
    expect(checkAddress('[::1]:4242')).toBe('[::1]:4242');
    for (const bad of ['', 'a b', 'x\n', 42]) {
      expect(() => checkAddress(bad)).toThrow(ElectionConfigError);
    }
  });
});

describe('Doozer layout: lease bodies', () => {
  it('writes held and released records that parse back; a release carries a nonce of its own', () => {
    const held = heldLease(ME, 42, 3, 'n1');
    expect(held).toBe(
      '{"v":1,"state":"held","term":42,"holder":"10.0.0.1:80","id":"aaaa","seq":3,"nonce":"n1"}',
    );
    const r = parseLease(held);
    expect(r && isOwnHeldLease(r, 'aaaa', 42, 'n1')).toBe(true);
    expect(r && isOwnHeldLease(r, 'aaaa', 42, 'n2')).toBe(false);
    expect(r && isOwnHeldLease(r, 'bbbb', 42, 'n1')).toBe(false);
    const released = parseLease(releasedLease(ME, 42, 3));
    expect(released).toMatchObject({ state: 'released', term: 42, seq: 4, id: 'aaaa' });
    expect(released?.nonce).toMatch(/^[0-9a-f]{12}$/);
    expect(releasedLease(ME, 42, 3)).not.toBe(releasedLease(ME, 42, 3));
    expect(released && isOwnHeldLease(released, 'aaaa', 42, released.nonce ?? '')).toBe(false);
  });
});

describe('Doozer layout: what the files say', () => {
  it('no files: no record', () => {
    expect(recordOf(NO_FILES, 1, nobodyCreated)).toBeNull();
    expect(recordOf(files(null, [5, 'garbage']), 1, nobodyCreated)).toBeNull();
  });

  it('an election file with the lease of its term is held by the lease holder', () => {
    const f = files([10, OTHER.holder], [11, heldLease(OTHER, 10, 0, 'n')]);
    expect(recordOf(f, 1, nobodyCreated)).toEqual({
      state: 'held',
      holder: OTHER.holder,
      holderId: OTHER.id,
      token: 10,
      termId: '1:10:10.0.0.2:80',
    });
  });

  it('an election file with the released lease of its term is released', () => {
    const f = files([10, OTHER.holder], [12, releasedLease(OTHER, 10, 0)]);
    expect(recordOf(f, 1, nobodyCreated)).toMatchObject({ state: 'released', token: 10 });
  });

  it('an election file without a lease of its term is unleased (a Go master): no holder id unless we created it', () => {
    for (const lease of [
      [0, ''],
      [3, 'not json'],
      [4, heldLease(OTHER, 2, 9, 'old')],
      [5, releasedLease(OTHER, 2, 9)],
    ] as [number, string][]) {
      expect(recordOf(files([10, '[::1]:99'], lease), 1, nobodyCreated)).toEqual({
        state: 'unleased',
        holder: '[::1]:99',
        holderId: '',
        token: 10,
        termId: '1:10:[::1]:99',
      });
    }
    const ours = { id: ME.id, createdElectionRev: (rev: number) => rev === 10 };
    expect(recordOf(files([10, ME.holder]), 1, ours)?.holderId).toBe(ME.id);
    expect(recordOf(files([11, ME.holder]), 1, ours)?.holderId).toBe('');
  });

  it('no election file: a held lease is ended (deposed or forced), a released one is released', () => {
    expect(recordOf(files(null, [11, heldLease(OTHER, 10, 4, 'n')]), 1, nobodyCreated)).toEqual({
      state: 'ended',
      holder: OTHER.holder,
      holderId: OTHER.id,
      token: 10,
      termId: '1:10:10.0.0.2:80',
    });
    expect(recordOf(files(null, [12, releasedLease(OTHER, 10, 4)]), 1, nobodyCreated)?.state).toBe(
      'released',
    );
  });
});

describe('Doozer layout: term identity', () => {
  it('is the same through every state of one term, and differs for another term or store epoch', () => {
    const stages = [
      files([10, OTHER.holder], [7, releasedLease(ME, 6, 2)]), // created, lease not taken yet
      files([10, OTHER.holder], [11, heldLease(OTHER, 10, 0, 'n')]),
      files([10, OTHER.holder], [13, heldLease(OTHER, 10, 1, 'n')]),
      files(null, [13, heldLease(OTHER, 10, 1, 'n')]), // deposed
      files(null, [14, releasedLease(OTHER, 10, 1)]),
    ];
    const ids = stages.map((f) => recordOf(f, 1, nobodyCreated)?.termId);
    expect(new Set(ids)).toEqual(new Set(['1:10:10.0.0.2:80']));
    expect(recordOf(stages[1]!, 2, nobodyCreated)?.termId).not.toBe(ids[1]);
    expect(recordOf(files([15, OTHER.holder]), 1, nobodyCreated)?.termId).not.toBe(ids[1]);
  });
});

describe('Doozer layout: keys and liveness', () => {
  it('keys differ with any rev or body, and with the store epoch', () => {
    const a = files([10, 'x:1'], [11, heldLease(OTHER, 10, 0, 'n')]);
    const key = versionKey(a, 1);
    expect(versionKey(files([10, 'x:1'], [11, heldLease(OTHER, 10, 0, 'n')]), 1)).toBe(key);
    expect(versionKey(files([10, 'x:2'], [11, heldLease(OTHER, 10, 0, 'n')]), 1)).not.toBe(key);
    expect(versionKey(files([10, 'x:1'], [11, heldLease(OTHER, 10, 0, 'm')]), 1)).not.toBe(key);
    expect(versionKey(files([10, 'x:1'], [12, heldLease(OTHER, 10, 0, 'n')]), 1)).not.toBe(key);
    expect(versionKey(files(null, [11, heldLease(OTHER, 10, 0, 'n')]), 1)).not.toBe(key);
    expect(versionKey(a, 2)).not.toBe(key);
  });

  it('liveness moves with the lease, a new election file and the era, not with a delete of the election file', () => {
    const lease: [number, string] = [11, heldLease(OTHER, 10, 0, 'n')];
    const held = livenessOf(files([10, 'x:1'], lease), 0, 10);
    // Deposed or forced out: the election file is gone, the lease is the same.
    expect(livenessOf(files(null, lease), 0, 10)).toBe(held);
    // A renewal, a new term, another era.
    expect(livenessOf(files([10, 'x:1'], [13, heldLease(OTHER, 10, 1, 'n')]), 0, 10)).not.toBe(
      held,
    );
    expect(livenessOf(files([20, 'x:2'], lease), 0, 10)).not.toBe(held);
    expect(livenessOf(files([10, 'x:1'], lease), 1, 10)).not.toBe(held);
  });
});
