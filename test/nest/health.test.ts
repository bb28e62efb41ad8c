import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Injectable, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { describe, expect, it, vi } from 'vitest';
import {
  ElectionFatalError,
  MasterElectionHealthIndicator,
  MasterElectionModule,
  OnElectionFatal,
} from 'nestjs-master-election';
import { DoozerServer } from 'nestjs-master-election/testing';
import { EventLog, FAST, muteLogger, useHarness, waitFor, waitForRole } from './helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('MasterElectionHealthIndicator', () => {
  const h = useHarness();

  it('is up with role, master and term while the election runs and the connection is live; down otherwise', async () => {
    const app = await h.app({
      imports: [
        TerminusModule,
        MasterElectionModule.forRoot({
          uri: h.server.uri,
          name: 'health',
          address: 'a:1',
          ...FAST,
        }),
      ],
      providers: [MasterElectionHealthIndicator],
    });
    const indicator = app.app.get(MasterElectionHealthIndicator);
    const health = app.app.get(HealthCheckService);
    const service = app.service();

    const state = await waitForRole(service, 'master');
    expect(await indicator.isHealthy('election')).toEqual({
      election: {
        status: 'up',
        election: 'health',
        role: 'master',
        master: 'a:1',
        term: state.term,
        connected: true,
      },
    });
    const ok = await health.check([() => indicator.isHealthy('election')]);
    expect(ok.status).toBe('ok');

    expect(await indicator.isHealthy('other', 'no-such-election')).toMatchObject({
      other: { status: 'down', reason: expect.stringContaining('"no-such-election"') as unknown },
    });

    await h.server.stop();
    await vi.waitFor(() => expect(service.health().connected).toBe(false), { timeout: 10_000 });
    expect(await indicator.isHealthy('election')).toMatchObject({
      election: { status: 'down', connected: false, reason: expect.any(String) as unknown },
    });
    await expect(health.check([() => indicator.isHealthy('election')])).rejects.toBeInstanceOf(
      ServiceUnavailableException,
    );

    await app.close();
    expect(await indicator.isHealthy('election')).toMatchObject({
      election: { status: 'down', role: 'stopped', reason: 'election stopped' },
    });
  });

  it('reports a named (non-default) registration by its name', async () => {
    const common = { uri: h.server.uri, address: 'a:1', ...FAST };
    const app = await h.app({
      imports: [
        TerminusModule,
        MasterElectionModule.forRoot({ ...common, name: 'alpha' }),
        MasterElectionModule.forRoot({ ...common, name: 'beta', isDefault: false }),
      ],
      providers: [MasterElectionHealthIndicator],
    });
    const indicator = app.app.get(MasterElectionHealthIndicator);
    const beta = app.service('beta');
    const state = await waitForRole(beta, 'master');
    expect(await indicator.isHealthy('jobs', 'beta')).toEqual({
      jobs: {
        status: 'up',
        election: 'beta',
        role: 'master',
        master: 'a:1',
        term: state.term,
        connected: true,
      },
    });
    // Without a name: the default registration.
    await waitForRole(app.service(), 'master');
    expect(await indicator.isHealthy('default')).toMatchObject({
      default: { status: 'up', election: 'alpha' },
    });
    // Health is not mastership: a registration that resigned stays up.
    await beta.resign();
    await waitFor(beta.state$, (s) => s.role !== 'master', 'beta to step down');
    expect((await indicator.isHealthy('jobs', 'beta')).jobs.status).toBe('up');
  });

  it('@OnElectionFatal fires when a running election hits a fatal error; health is down afterwards', async () => {
    muteLogger(h, 'error');
    muteLogger(h, 'warn');

    @Injectable()
    class Fatal {
      readonly fatal = new EventLog<Error>();
      @OnElectionFatal()
      onFatal(err: Error): void {
        this.fatal.push(err);
      }
    }

    // The server wants a secret for writes; without one the session is read-only:
    // the connection and the election start, and the first write is refused.
    const server = await DoozerServer.start({ heartbeatMs: false, rwSecret: 'rw-secret' });
    h.defer(() => server.close());
    const app = await h.app({
      imports: [
        TerminusModule,
        MasterElectionModule.forRoot({ uri: server.uri, name: 'ro', address: 'a:1', ...FAST }),
      ],
      providers: [Fatal, MasterElectionHealthIndicator],
    });
    const service = app.service();
    expect(service.state.role).not.toBe('stopped'); // it started
    const err = await app.app.get(Fatal).fatal.next(() => true, 'the fatal error');
    expect(err).toBeInstanceOf(ElectionFatalError);
    expect(err.message).toMatch(/permission denied/);
    await expect(service.waitForMastership()).rejects.toMatchObject({ reason: 'stopped' });
    const indicator = app.app.get(MasterElectionHealthIndicator);
    expect(await indicator.isHealthy('election')).toMatchObject({
      election: { status: 'down', election: 'ro', reason: expect.any(String) as unknown },
    });
    await expect(
      app.app.get(HealthCheckService).check([() => indicator.isHealthy('election')]),
    ).rejects.toBeInstanceOf(ServiceUnavailableException);
  });

  it('the module loads and elects without @nestjs/terminus installed', async () => {
    // A child process running the compiled package, where '@nestjs/terminus' cannot be resolved.
    const hook = `export async function resolve(specifier, context, next) {
      if (specifier === '@nestjs/terminus' || specifier.startsWith('@nestjs/terminus/')) {
        throw Object.assign(new Error('Cannot find package @nestjs/terminus'), { code: 'ERR_MODULE_NOT_FOUND' });
      }
      return next(specifier, context);
    }`;
    const script = `
      import { register } from 'node:module';
      register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
      await import('@nestjs/terminus').then(
        () => { throw new Error('terminus should not resolve'); },
        () => undefined,
      );
      const { NestFactory } = await import('@nestjs/core');
      const { firstValueFrom, filter } = await import('rxjs');
      const pkg = await import('./dist/lib/index.js');
      const app = await NestFactory.createApplicationContext(
        pkg.MasterElectionModule.forRoot({
          uri: process.env.DOOZER_URI, name: 'no-terminus', address: 'child:1',
          leaseMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 200,
        }),
        { logger: false },
      );
      const service = app.get(pkg.MasterElectionService);
      const state = await firstValueFrom(service.state$.pipe(filter((s) => s.role === 'master')));
      await app.close();
      console.log(JSON.stringify({ role: state.role, indicator: typeof pkg.MasterElectionHealthIndicator }));
    `;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--input-type=module', '-e', script],
      { cwd: root, env: { ...process.env, DOOZER_URI: h.server.uri }, timeout: 30_000 },
    );
    expect(JSON.parse(stdout.trim())).toEqual({ role: 'master', indicator: 'function' });
  });
});
