/**
 * The first election on an empty store that cannot prove a missing record
 * means nobody is at work (Doozer): it waits one leaseMs, and says so once,
 * at info level, with how long and why (issue 14).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ElectionLogger } from '../../../lib/election/index.js';
import { Fleet, TIMING } from './harness.js';

let fleet: Fleet;

afterEach(async () => {
  await fleet.close();
});

/** A logger recording `level: message` lines. */
function recordingLogger(): ElectionLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    log: (m) => lines.push(`log: ${m}`),
    info: (m) => lines.push(`info: ${m}`),
    warn: (m) => lines.push(`warn: ${m}`),
    error: (m) => lines.push(`error: ${m}`),
    debug: (m) => lines.push(`debug: ${m}`),
  };
}

const notice = (lines: string[]): string[] => lines.filter((l) => l.includes('no lease is on'));

describe('engine: the first election on an empty store', () => {
  it('logs once at info level that no lease is on record, how long it waits and why, also across a failed run', async () => {
    fleet = new Fleet(); // observer expiry, a missing record proves nothing (like Doozer)
    const logger = recordingLogger();
    const a = await fleet.join('10.0.0.1:80', { logger });
    expect(notice(logger.lines)).toEqual([
      `info: election jobs: no lease is on record: waiting ${TIMING.leaseMs} ms (leaseMs) before running for master, ` +
        'because a store that lost its state looks empty while its master may still be at work ' +
        '(see docs/election-protocol.md, "A store that lost its state")',
    ]);
    // The first run for master fails and is retried after a backoff: not logged again.
    fleet.store.failNextWrite();
    await fleet.run(TIMING.leaseMs, 500);
    expect(a.election.isMaster()).toBe(false);
    await fleet.run(TIMING.retryPeriodMs, 100);
    expect(a.election.isMaster()).toBe(true);
    expect(notice(logger.lines)).toHaveLength(1);
  });

  it('a logger without info gets the line through log; a passive client logs nothing', async () => {
    fleet = new Fleet();
    const lines: string[] = [];
    const logger: ElectionLogger = {
      log: (m) => lines.push(`log: ${m}`),
      warn: (m) => lines.push(`warn: ${m}`),
      error: (m) => lines.push(`error: ${m}`),
    };
    const passive: string[] = [];
    await fleet.join('10.0.0.9:80', {
      participating: false,
      logger: { ...logger, log: (m) => passive.push(m) },
    });
    await fleet.join('10.0.0.1:80', { logger });
    expect(notice(lines)).toHaveLength(1);
    expect(notice(lines)[0]).toMatch(
      /^log: election jobs: no lease is on record: waiting 10000 ms/,
    );
    expect(notice(passive)).toEqual([]);
  });

  it('says nothing where a missing record proves that nobody is at work (etcd, PostgreSQL)', async () => {
    for (const options of [{ absentProvesNoMaster: true }, { expiry: 'store' as const }]) {
      fleet = new Fleet(options);
      const logger = recordingLogger();
      const a = await fleet.join('10.0.0.1:80', { logger });
      expect(a.election.isMaster()).toBe(true);
      expect(notice(logger.lines)).toEqual([]);
      await fleet.close();
    }
    fleet = new Fleet({ absentProvesNoMaster: true });
  });
});
