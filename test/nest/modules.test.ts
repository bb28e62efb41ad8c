/**
 * Feature modules inject the election without ceremony, the public registry,
 * and the boot error of a Doozer that accepts connections but never answers
 * (issue 18 items 3 and 7, issue 13's public registry).
 */
import { Injectable, Module } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import {
  InjectMasterElection,
  MasterElectionConnectError,
  MasterElectionModule,
  MasterElectionRegistry,
  MasterElectionService,
  MasterOnly,
  OnBecomeMaster,
  OnBecomeSlave,
} from 'nestjs-master-election';
import { EventLog, FAST, useHarness, waitForRole } from './helpers.js';

@Injectable()
class FeatureService {
  constructor(
    readonly election: MasterElectionService,
    @InjectMasterElection('reports') readonly reports: MasterElectionService,
    readonly registry: MasterElectionRegistry,
  ) {}
}

/** The default election `jobs` and the named `reports`, both of address `a:1`. */
const twoElections = (uri: string) => [
  MasterElectionModule.forRoot({ uri, name: 'jobs', address: 'a:1', ...FAST }),
  MasterElectionModule.forRoot({ uri, name: 'reports', address: 'a:1', isDefault: false, ...FAST }),
];

/** A feature module that does not import MasterElectionModule. */
@Module({ providers: [FeatureService], exports: [FeatureService] })
class FeatureModule {}

describe('feature modules and the registry', () => {
  const h = useHarness();

  it('a feature module injects MasterElectionService, a named election and the registry without isGlobal', async () => {
    const app = await h.app({
      imports: [...twoElections(h.server.uri), FeatureModule],
    });
    const feature = app.app.get(FeatureService);
    expect(feature.election).toBe(app.service());
    expect(feature.election.name).toBe('jobs');
    expect(feature.reports.name).toBe('reports');
    expect(feature.registry.list().map((s) => s.name)).toEqual(['jobs', 'reports']);
    expect(feature.registry.get('reports')).toBe(feature.reports);
    expect(feature.registry.get('nope')).toBeUndefined();
    expect(feature.registry.getDefault()).toBe(feature.election);
    await waitForRole(feature.election, 'master');
  });

  it('isGlobal: false keeps the services to the modules that import the registration', async () => {
    await expect(
      h.app({
        imports: [
          MasterElectionModule.forRoot({
            uri: h.server.uri,
            name: 'jobs',
            isGlobal: false,
            ...FAST,
          }),
          FeatureModule,
        ],
      }),
    ).rejects.toThrow(/FeatureService/);
  });
});

describe('one explorer per application', () => {
  const h = useHarness();

  it('scans the application once for all registrations, and routes handlers by election name', async () => {
    const scans = vi.spyOn(DiscoveryService.prototype, 'getProviders');
    h.defer(() => scans.mockRestore());
    const calls: string[] = [];

    @Injectable()
    class Jobs {
      @OnBecomeMaster()
      jobs(): void {
        calls.push('jobs');
      }
      @OnBecomeMaster('reports')
      reports(): void {
        calls.push('reports');
      }
      @MasterOnly('reports')
      report(): string {
        return 'reported';
      }
    }
    const app = await h.app({
      imports: [...twoElections(h.server.uri)],
      providers: [Jobs],
    });
    expect(scans).toHaveBeenCalledTimes(1);
    await waitForRole(app.service('reports'), 'master');
    await waitForRole(app.service(), 'master');
    expect(calls.sort()).toEqual(['jobs', 'reports']);
    expect(app.app.get(Jobs).report()).toBe('reported');
    // An instance Nest did not create is bound to no election: no process-wide fallback.
    expect(new Jobs().report()).toBeUndefined();
  });
});

describe('@OnBecomeSlave', () => {
  const h = useHarness();

  it("receives the master's address and its term's fencing token", async () => {
    @Injectable()
    class Follower {
      readonly seen = new EventLog<{ master: string; token: number }>();
      @OnBecomeSlave()
      follow(master: string, token: number): void {
        this.seen.push({ master, token });
      }
    }
    const start = (address: string) =>
      h.app({
        imports: [
          MasterElectionModule.forRoot({ uri: h.server.uri, name: 'slaves', address, ...FAST }),
        ],
        providers: [Follower],
      });
    const a = await start('a:1');
    const term = await waitForRole(a.service(), 'master');
    const b = await start('b:2');
    const seen = await b.app.get(Follower).seen.next(() => true, 'the slave notice');
    expect(seen).toEqual({ master: 'a:1', token: term.term });
    expect(term.term).toBeGreaterThan(0);
  });
});

describe('boot errors', () => {
  const h = useHarness();

  it('a Doozer that accepts connections but never answers fails the boot with a typed error naming the election and the address', async () => {
    const sockets = new Set<Socket>();
    const blackhole = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
    h.defer(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => blackhole.close(r));
    });
    const { port } = blackhole.address() as AddressInfo;
    const boot = h.app({
      imports: [
        MasterElectionModule.forRoot({
          uri: `doozer:?ca=127.0.0.1:${port}`,
          name: 'silent',
          logLevel: 'silent',
          ...FAST,
        }),
      ],
    });
    const err: unknown = await boot.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MasterElectionConnectError);
    const e = err as MasterElectionConnectError;
    expect(e.election).toBe('silent');
    expect(e.uri).toBe(`doozer:?ca=127.0.0.1:${port}`);
    expect(e.message).toMatch(
      new RegExp(
        `^election silent: cannot connect to Doozer at doozer:\\?ca=127\\.0\\.0\\.1:${port}: it accepted the connection but did not answer \\(.*timed out.*\\)`,
      ),
    );
    expect(e.cause).toBeInstanceOf(Error);
  });
});
