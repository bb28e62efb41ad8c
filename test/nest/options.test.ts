import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Injectable, Logger, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { describe, expect, it, vi } from 'vitest';
import {
  ElectionConfigError,
  ElectionFatalError,
  InjectMasterElection,
  MasterElectionConnectError,
  MasterElectionModule,
  MasterElectionNotRunningError,
  MasterElectionService,
  OnElectionFatal,
  type MasterElectionAsyncModuleOptions,
  type MasterElectionModuleOptions,
  type MasterElectionOptionsFactory,
} from 'nestjs-master-election';
import { DoozerClient } from 'nestjs-master-election/doozer';
import { DoozerServer } from 'nestjs-master-election/testing';
import { EventLog, FAST, muteLogger, useHarness, waitForRole } from './helpers.js';

describe('MasterElectionModule options', () => {
  const h = useHarness();

  const base = (): MasterElectionModuleOptions => ({
    uri: h.server.uri,
    name: 'opts',
    address: 'a:1',
    ...FAST,
  });

  it.each<[string, Partial<Record<keyof MasterElectionModuleOptions, unknown>>]>([
    ['name', { name: 'a/b' }],
    ['name', { name: '' }],
    ['uri', { uri: undefined }],
    ['uri', { uri: 'http://127.0.0.1:8046' }],
    ['bootUri', { uri: 'doozer:?cn=prod' }],
    ['bootUri', { uri: 'doozer:?cn=prod&sk=secret' }],
    ['bootUri', { bootUri: 'doozer:?nope' }],
    ['client', { client: {} }],
    ['address', { address: 'no port' }],
    ['renewDeadlineMs', { leaseMs: 500, renewDeadlineMs: 600 }],
    ['retryPeriodMs', { retryPeriodMs: 700 }],
    ['leaseMs', { leaseMs: -1 }],
    ['electionJitterMs', { electionJitterMs: 500 }],
    ['participating', { participating: 'yes' }],
    ['onUnreachable', { onUnreachable: 'later' }],
    ['connectTimeoutMs', { connectTimeoutMs: 0 }],
  ])('rejects a bad %s at boot, naming it', async (option, bad) => {
    const options = { ...base(), ...bad } as MasterElectionModuleOptions;
    const boot = h.app({ imports: [MasterElectionModule.forRoot(options)] });
    await expect(boot).rejects.toBeInstanceOf(ElectionConfigError);
    await expect(boot).rejects.toMatchObject({
      option,
      message: expect.stringMatching(new RegExp(`^${option}: `)) as unknown,
    });
  });

  it('rejects two default registrations, and one election registered twice', async () => {
    await expect(
      h.app({
        imports: [
          MasterElectionModule.forRoot({ ...base(), name: 'one' }),
          MasterElectionModule.forRoot({ ...base(), name: 'two' }),
        ],
      }),
    ).rejects.toThrow(/"one" and "two" are both the default registration.*isDefault: false/);
    await expect(
      h.app({
        imports: [
          MasterElectionModule.forRoot({ ...base(), name: 'one' }),
          MasterElectionModule.forRoot({ ...base(), name: 'one', isDefault: false }),
        ],
      }),
    ).rejects.toThrow(/election "one" is registered more than once/);
    expect(() =>
      MasterElectionModule.forRootAsync({ isDefault: false, useFactory: () => base() }),
    ).toThrow(ElectionConfigError);
  });

  it('names bootUri when a cn= URI has no ca= addresses; with ca= addresses cn= is not looked up', async () => {
    const boot = h.app({
      imports: [MasterElectionModule.forRoot({ ...base(), uri: 'doozer:?cn=prod&sk=s3cret' })],
    });
    const err = (await boot.catch((e: unknown) => e)) as ElectionConfigError;
    expect(err).toBeInstanceOf(ElectionConfigError);
    expect(err.option).toBe('bootUri');
    expect(err.message).toMatch(/^bootUri: required: `uri` names cluster cn=prod/);
    expect(err.message).not.toContain('s3cret');

    // ca= wins over cn= (like the Go client): no boot URI needed.
    const app = await h.app({
      imports: [MasterElectionModule.forRoot({ ...base(), uri: `${h.server.uri}&cn=prod` })],
    });
    await waitForRole(app.service(), 'master');
  });

  it("treats an unusable URI as fatal, without retrying (onUnreachable: 'retry')", async () => {
    const warn = muteLogger(h, 'warn');
    muteLogger(h, 'error');
    const fatal = new EventLog<Error>();

    @Injectable()
    class Fatal {
      @OnElectionFatal()
      onFatal(err: Error): void {
        fatal.push(err);
      }
    }

    // The boot cluster has no member under /ctl/ns/nosuch: a DoozerUriError.
    const app = await h.app({
      imports: [
        MasterElectionModule.forRoot({
          ...base(),
          uri: 'doozer:?cn=nosuch',
          bootUri: h.server.uri,
          onUnreachable: 'retry',
        }),
      ],
      providers: [Fatal],
    });
    const err = await fatal.next(() => true, 'the fatal error');
    expect(err).toBeInstanceOf(ElectionFatalError);
    expect(err.message).toMatch(/cluster cn=nosuch has no members.*retrying cannot help/);
    expect((err.cause as Error).name).toBe('DoozerUriError');
    expect(warn.mock.calls.map((c) => String(c[0]))).not.toContainEqual(
      expect.stringContaining('retrying in'),
    );
    await expect(app.service().waitForMastership()).rejects.toMatchObject({ reason: 'stopped' });
  });

  it("logs the delay it really waits before retrying, jitter included (onUnreachable: 'retry')", async () => {
    await h.server.stop();
    const retrying: { at: number; ms: number }[] = [];
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation((message: unknown) => {
      const m = / retrying in (\d+) ms$/.exec(String(message));
      if (m) retrying.push({ at: performance.now(), ms: Number(m[1]) });
    });
    h.defer(() => warn.mockRestore());
    await h.app({
      imports: [MasterElectionModule.forRoot({ ...base(), onUnreachable: 'retry' })],
    });
    await vi.waitFor(() => expect(retrying.length).toBeGreaterThanOrEqual(4), {
      timeout: 20_000,
    });
    // Backoff 100, 200, 400, 800 ms, each waited with jitter: half to all of it.
    retrying.slice(0, 4).forEach(({ ms }, i) => {
      const backoff = 100 * 2 ** i;
      expect(ms).toBeGreaterThanOrEqual(backoff / 2);
      expect(ms).toBeLessThanOrEqual(backoff);
    });
    // What is logged is what is waited: the next attempt comes no sooner.
    for (let i = 0; i < 3; i++) {
      const gap = retrying[i + 1]!.at - retrying[i]!.at;
      expect(gap).toBeGreaterThanOrEqual(retrying[i]!.ms - 2);
    }
  });

  it('shutdown abandons a connection attempt in flight at once (a server that never answers ACCESS)', async () => {
    // Accepts connections and never answers: the client waits on ACCESS (sk=).
    const sockets = new Set<Socket>();
    const accepted = new EventLog<Socket>();
    const blackhole = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
      accepted.push(socket);
    });
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
    h.defer(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => blackhole.close(r));
    });
    const { port } = blackhole.address() as AddressInfo;
    const app = await h.app({
      imports: [
        MasterElectionModule.forRoot({
          ...base(),
          uri: `doozer:?ca=127.0.0.1:${port}&sk=secret`,
          connectTimeoutMs: 50_000,
          onUnreachable: 'retry',
        }),
      ],
    });
    const socket = await accepted.next(() => true, 'the connection attempt');
    const closed = new Promise((r) => socket.once('close', r));
    const started = performance.now();
    await app.close();
    // Far below connectTimeoutMs (what shutdown waited before).
    expect(performance.now() - started).toBeLessThan(10_000);
    await closed; // the client closed its socket
    expect(app.service().state.role).toBe('stopped');
  });

  it('warns about unknown options', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    h.defer(() => warn.mockRestore());
    await h.app({
      imports: [
        MasterElectionModule.forRoot({ ...base(), leaseMS: 5 } as MasterElectionModuleOptions),
      ],
    });
    expect(warn).toHaveBeenCalledWith(
      'election "opts": unknown MasterElectionModule option "leaseMS" is ignored',
    );
  });

  it("fails the boot when Doozer is unreachable (onUnreachable: 'fail'), naming the URI without its secret", async () => {
    await h.server.stop();
    const uri = `doozer:?ca=${h.server.address}&sk=top-secret-value`;
    const boot = h.app({
      imports: [MasterElectionModule.forRoot({ ...base(), uri, connectTimeoutMs: 2000 })],
    });
    await expect(boot).rejects.toBeInstanceOf(MasterElectionConnectError);
    const err = (await boot.catch((e: unknown) => e)) as MasterElectionConnectError;
    expect(err.message).toContain(
      `cannot connect to Doozer at doozer:?ca=${h.server.address}&sk=***`,
    );
    expect(err.uri).toBe(`doozer:?ca=${h.server.address}&sk=***`);
    expect(`${err.message} ${String(err.stack)}`).not.toContain('top-secret-value');
  });

  it("keeps connecting in the background with onUnreachable: 'retry'", async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    h.defer(() => warn.mockRestore());
    const server = await DoozerServer.start({ heartbeatMs: false, rwSecret: 'retry-secret' });
    h.defer(() => server.close());
    await server.stop();
    const app = await h.app({
      imports: [
        MasterElectionModule.forRoot({
          ...base(),
          uri: `${server.uri}&sk=retry-secret`,
          onUnreachable: 'retry',
        }),
      ],
    });
    const service = app.service();
    expect(service.state.role).toBe('stopped');
    expect(service.health()).toMatchObject({ healthy: false, connected: false });
    await expect(service.readCurrentMaster()).rejects.toBeInstanceOf(MasterElectionNotRunningError);
    const retryWarning = (): string | undefined =>
      warn.mock.calls.map((c) => String(c[0])).find((m) => m.includes('retrying'));
    await vi.waitFor(() => expect(retryWarning()).toBeDefined(), { timeout: 10_000 });
    const retrying = retryWarning();
    expect(retrying).toContain('sk=***');
    expect(retrying).not.toContain('retry-secret');

    await server.restart();
    await waitForRole(service, 'master');
    expect(service.health()).toMatchObject({ healthy: true, role: 'master', connected: true });
  });

  it("stops retrying and reports a fatal error when Doozer refuses access (onUnreachable: 'retry')", async () => {
    const error = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    h.defer(() => error.mockRestore());
    const fatal: Error[] = [];

    @Injectable()
    class Fatal {
      @OnElectionFatal()
      onFatal(err: Error): void {
        fatal.push(err);
      }
    }

    const server = await DoozerServer.start({ heartbeatMs: false, rwSecret: 'right' });
    h.defer(() => server.close());
    const app = await h.app({
      imports: [
        MasterElectionModule.forRoot({
          ...base(),
          uri: `${server.uri}&sk=wrong`,
          onUnreachable: 'retry',
        }),
      ],
      providers: [Fatal],
    });
    await vi.waitFor(() => expect(fatal).toHaveLength(1), { timeout: 10_000 });
    expect(fatal[0]).toBeInstanceOf(ElectionFatalError);
    expect(fatal[0]?.message).toMatch(/sk=\*\*\* refused access/);
    expect(fatal[0]?.message).not.toContain('wrong');
    await expect(app.service().waitForMastership()).rejects.toMatchObject({ reason: 'stopped' });
  });

  it('closes cleanly while still retrying', async () => {
    await h.server.stop();
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    h.defer(() => warn.mockRestore());
    const app = await h.app({
      imports: [MasterElectionModule.forRoot({ ...base(), onUnreachable: 'retry' })],
    });
    await app.close();
    expect(app.service().state.role).toBe('stopped');
  });

  it('uses a given client and never closes it', async () => {
    const client = await DoozerClient.connect(h.server.uri);
    h.defer(() => client.close());
    const { uri: _uri, ...rest } = base();
    const app = await h.app({ imports: [MasterElectionModule.forRoot({ ...rest, client })] });
    await waitForRole(app.service(), 'master');
    await app.close();
    expect(client.state).toBe('connected');
    expect(h.server.connections).toBe(1);
  });

  it('forRootAsync with @nestjs/config: useFactory and useClass, global registration', async () => {
    @Injectable()
    class ElectionConfig implements MasterElectionOptionsFactory {
      constructor(private readonly config: ConfigService) {}
      createMasterElectionOptions(): MasterElectionAsyncModuleOptions {
        // No name: forRootAsync() gives it.
        return { uri: this.config.getOrThrow<string>('DOOZER_URI'), address: 'a:1', ...FAST };
      }
    }

    @Injectable()
    class Feature {
      constructor(
        readonly election: MasterElectionService,
        @InjectMasterElection('by-class') readonly byClass: MasterElectionService,
      ) {}
    }
    @Module({ providers: [Feature], exports: [Feature] })
    class FeatureModule {}

    const app = await h.app({
      imports: [
        ConfigModule.forRoot({
          ignoreEnvFile: true,
          load: [() => ({ DOOZER_URI: h.server.uri, ELECTION_NAME: 'from-config' })],
        }),
        MasterElectionModule.forRootAsync({
          isGlobal: true,
          imports: [ConfigModule],
          inject: [ConfigService],
          useFactory: (config: ConfigService) => ({
            uri: config.getOrThrow<string>('DOOZER_URI'),
            name: config.getOrThrow<string>('ELECTION_NAME'),
            address: 'a:1',
            ...FAST,
          }),
        }),
        MasterElectionModule.forRootAsync({
          name: 'by-class',
          isDefault: false,
          isGlobal: true,
          imports: [ConfigModule],
          useClass: ElectionConfig,
        }),
        FeatureModule,
      ],
    });
    const feature = app.app.get(Feature);
    expect(feature.election.name).toBe('from-config');
    expect(feature.byClass.name).toBe('by-class');
    await Promise.all([
      waitForRole(feature.election, 'master'),
      waitForRole(feature.byClass, 'master'),
    ]);
    expect(h.server.connections).toBe(1); // one URI: one shared connection
  });
});

describe('MasterElectionModule.forRootAsync({ useExisting })', () => {
  const h = useHarness();

  it('takes the options from an existing provider of an imported module, without a second instance', async () => {
    @Injectable()
    class SharedElectionConfig implements MasterElectionOptionsFactory {
      static instances = 0;
      calls = 0;
      constructor(private readonly config: ConfigService) {
        SharedElectionConfig.instances++;
      }
      createMasterElectionOptions(): Promise<MasterElectionAsyncModuleOptions> {
        this.calls++;
        return Promise.resolve({
          uri: this.config.getOrThrow<string>('DOOZER_URI'),
          address: 'existing:1',
          ...FAST,
        });
      }
    }
    @Module({
      imports: [ConfigModule],
      providers: [SharedElectionConfig],
      exports: [SharedElectionConfig],
    })
    class ElectionConfigModule {}

    const app = await h.app({
      imports: [
        ConfigModule.forRoot({
          isGlobal: true,
          ignoreEnvFile: true,
          load: [() => ({ DOOZER_URI: h.server.uri })],
        }),
        ElectionConfigModule,
        MasterElectionModule.forRootAsync({
          name: 'by-existing',
          imports: [ElectionConfigModule],
          useExisting: SharedElectionConfig,
        }),
      ],
    });
    const service = app.service('by-existing');
    expect(service).toBe(app.service());
    expect(service.name).toBe('by-existing');
    expect(service.address).toBe('existing:1');
    // The provider of ElectionConfigModule itself was asked, once.
    expect(SharedElectionConfig.instances).toBe(1);
    expect(app.app.get(SharedElectionConfig).calls).toBe(1);
    expect(await waitForRole(service, 'master')).toMatchObject({ master: 'existing:1' });
  });
});
