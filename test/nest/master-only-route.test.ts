/**
 * Routes that must run only on the master (issue 18 item 11): the
 * `@MasterOnlyRoute` decorator, the guard and the interceptor, over real HTTP
 * on loopback, two replicas on the embedded Doozer server.
 */
import { Controller, Get, Logger, UseGuards, UseInterceptors } from '@nestjs/common';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { describe, expect, it, vi } from 'vitest';
import {
  MasterElectionGuard,
  MasterElectionInterceptor,
  MasterElectionModule,
  MasterElectionService,
  MasterOnlyRoute,
  getMasterElectionToken,
} from 'nestjs-master-election';
import { FAST, useHarness, waitForRole, type Harness } from './helpers.js';

@Controller()
class JobsController {
  @Get('open')
  open(): string {
    return 'anyone';
  }

  @Get('sweep')
  @MasterOnlyRoute()
  sweep(): string {
    return 'swept';
  }

  @Get('reports')
  @MasterOnlyRoute('reports')
  reports(): string {
    return 'reported';
  }

  @Get('nowhere')
  @MasterOnlyRoute('not-registered')
  nowhere(): string {
    return 'never';
  }

  @Get('intercepted')
  @UseInterceptors(MasterElectionInterceptor)
  intercepted(): string {
    return 'intercepted';
  }
}

@Controller('guarded')
@UseGuards(MasterElectionGuard)
class GuardedController {
  @Get()
  all(): string {
    return 'guarded';
  }
}

interface Replica {
  readonly app: INestApplication;
  readonly base: string;
  readonly jobs: MasterElectionService;
  readonly reports: MasterElectionService;
}

/** An HTTP replica listening on a free loopback port; closed by the harness. */
async function replica(h: Harness, address: string): Promise<Replica> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      MasterElectionModule.forRoot({ uri: h.server.uri, name: 'jobs', address, ...FAST }),
      MasterElectionModule.forRoot({
        uri: h.server.uri,
        name: 'reports',
        address,
        isDefault: false,
        ...FAST,
      }),
    ],
    controllers: [JobsController, GuardedController],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  app.enableShutdownHooks();
  let closed = false;
  h.defer(async () => {
    if (!closed) await app.close();
    closed = true;
  });
  await app.listen(0, '127.0.0.1');
  const url = await app.getUrl();
  return {
    app,
    base: url.replace('[::1]', '127.0.0.1'),
    jobs: app.get(MasterElectionService),
    reports: app.get<MasterElectionService>(getMasterElectionToken('reports'), { strict: false }),
  };
}

async function get(r: Replica, path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${r.base}${path}`);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // a plain text answer
  }
  return { status: res.status, body };
}

describe('master-only routes', () => {
  const h = useHarness();

  it('serve on the master; elsewhere answer 503 naming the master; follow a handover', async () => {
    const a = await replica(h, '127.0.0.1:7001');
    await waitForRole(a.jobs, 'master');
    const b = await replica(h, '127.0.0.1:7002');
    await waitForRole(b.jobs, 'slave');

    expect(await get(a, '/sweep')).toEqual({ status: 200, body: 'swept' });
    expect(await get(a, '/guarded')).toEqual({ status: 200, body: 'guarded' });
    expect(await get(a, '/intercepted')).toEqual({ status: 200, body: 'intercepted' });
    for (const path of ['/sweep', '/guarded', '/intercepted']) {
      const res = await get(b, path);
      expect(res.status, path).toBe(503);
      expect(res.body).toMatchObject({ election: 'jobs', master: '127.0.0.1:7001' });
      expect((res.body as { message: string }).message).toContain('the master is 127.0.0.1:7001');
    }
    expect(await get(b, '/open')).toEqual({ status: 200, body: 'anyone' });

    // The master hands over on shutdown: the routes move with it.
    await a.app.close();
    await waitForRole(b.jobs, 'master');
    expect(await get(b, '/sweep')).toEqual({ status: 200, body: 'swept' });
    expect(await get(b, '/guarded')).toEqual({ status: 200, body: 'guarded' });
  });

  it('a named election guards its own routes; an unregistered name is a server error that says so', async () => {
    const a = await replica(h, '127.0.0.1:7003');
    await waitForRole(a.reports, 'master');
    const b = await replica(h, '127.0.0.1:7004');
    await waitForRole(b.reports, 'slave');
    expect(await get(a, '/reports')).toEqual({ status: 200, body: 'reported' });
    const res = await get(b, '/reports');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ election: 'reports', master: '127.0.0.1:7003' });

    const error = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    h.defer(() => error.mockRestore());
    expect((await get(a, '/nowhere')).status).toBe(500);
    expect(String(error.mock.calls.flat().join(' '))).toContain(
      'master-only for election "not-registered", which the application did not register',
    );
  });
});
