/**
 * The state after `resign()` (issue 18 item 10), as the docs describe it:
 * a participant sitting an election out with no master known is a
 * candidate with no master (never a slave, of no one or of itself), and
 * runs again once the sit-out ends.
 */
import { describe, expect, it } from 'vitest';
import { MasterElectionModule } from 'nestjs-master-election';
import { FAST, useHarness, waitFor, waitForRole } from './helpers.js';

describe('state after resign()', () => {
  const h = useHarness();

  it("is { role: 'candidate', master: '' } while sitting out, then the lone participant is master again", async () => {
    const app = await h.app({
      imports: [
        MasterElectionModule.forRoot({
          uri: h.server.uri,
          name: 'resign-state',
          address: '127.0.0.1:9',
          ...FAST,
        }),
      ],
    });
    const service = app.service();
    const first = await waitForRole(service, 'master');
    const roles: string[] = [];
    const sub = service.state$.subscribe((s) => roles.push(`${s.role}:${s.master}`));
    h.defer(() => sub.unsubscribe());

    await service.resign();
    await waitFor(
      service.state$,
      (s) => s.role === 'candidate' && s.master === '',
      'a candidate with no master',
      5000,
    ).catch((e: unknown) => {
      throw new Error(`${roles.join(' ')} ${String(e)} now ${JSON.stringify(service.state)}`);
    });
    expect(service.isMaster()).toBe(false);
    expect(service.state).toEqual({ role: 'candidate', master: '', term: 0 });
    const again = await waitForRole(service, 'master');
    expect(again.term).toBeGreaterThan(first.term);
    // Never a slave: not of its own address, not of no one.
    expect(roles.filter((r) => r.startsWith('slave'))).toEqual([]);
    expect(roles.at(-1)).toBe('master:127.0.0.1:9');
  });
});
