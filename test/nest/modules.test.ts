/**
 * Feature modules inject the election without ceremony, the public registry,
 * and the boot error of a Doozer that accepts connections but never answers
 * (issue 18 items 3 and 7, issue 13's public registry).
 */
import { Injectable, Module } from '@nestjs/common';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  InjectMasterElection,
  MasterElectionConnectError,
  MasterElectionModule,
  MasterElectionRegistry,
  MasterElectionService,
} from 'nestjs-master-election';
import { FAST, useHarness, waitForRole } from './helpers.js';

@Injectable()
class FeatureService {
  constructor(
    readonly election: MasterElectionService,
    @InjectMasterElection('reports') readonly reports: MasterElectionService,
    readonly registry: MasterElectionRegistry,
  ) {}
}

/** A feature module that does not import MasterElectionModule. */
@Module({ providers: [FeatureService], exports: [FeatureService] })
class FeatureModule {}

describe('feature modules and the registry', () => {
  const h = useHarness();

  it('a feature module injects MasterElectionService, a named election and the registry without isGlobal', async () => {
    const app = await h.app({
      imports: [
        MasterElectionModule.forRoot({ uri: h.server.uri, name: 'jobs', address: 'a:1', ...FAST }),
        MasterElectionModule.forRoot({
          uri: h.server.uri,
          name: 'reports',
          address: 'a:1',
          isDefault: false,
          ...FAST,
        }),
        FeatureModule,
      ],
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
