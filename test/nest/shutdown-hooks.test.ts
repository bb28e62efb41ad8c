/**
 * The bootstrap warning of a participating app that installed no SIGTERM
 * handler (issue 18 item 11): without `enableShutdownHooks()` a replica
 * dies on SIGTERM holding its lease.
 */
import { Logger } from '@nestjs/common';
import { describe, expect, it, vi } from 'vitest';
import { MasterElectionModule } from 'nestjs-master-election';
import { FAST, useHarness, type Harness } from './helpers.js';

/** The check runs on the next turn of the loop: a zero timer set after it fires after it. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

function warnings(h: Harness): () => string[] {
  const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  h.defer(() => warn.mockRestore());
  return () => warn.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('SIGTERM'));
}

describe('shutdown hooks check', () => {
  const h = useHarness();
  const election = (participating: boolean) =>
    MasterElectionModule.forRoot({
      uri: h.server.uri,
      name: 'hooks',
      address: '127.0.0.1:9',
      participating,
      ...FAST,
    });

  it('warns once, naming the election, when a participating app has no SIGTERM handler', async () => {
    expect(process.listenerCount('SIGTERM')).toBe(0);
    const seen = warnings(h);
    await h.app({ imports: [election(true)] });
    await nextTurn();
    expect(seen()).toHaveLength(1);
    expect(seen()[0]).toContain('election "hooks"');
    expect(seen()[0]).toContain('enableShutdownHooks()');
  });

  it('stays quiet with enableShutdownHooks(), and for an app that only follows', async () => {
    const seen = warnings(h);
    expect(process.listenerCount('SIGTERM')).toBe(0);
    await h.app({ imports: [election(false)] });
    await nextTurn();
    await h.app({ imports: [election(true)] }, { http: true });
    await nextTurn();
    expect(seen()).toEqual([]);
  });
});
