/**
 * The `@nestjs/terminus` health indicator. `@nestjs/terminus` is an optional
 * peer dependency: this file never imports it statically (only when a
 * check runs), so the package loads without it.
 */
import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { ElectionRole } from '../election/index.js';
import { getMasterElectionToken } from './master-election.constants.js';
import { MasterElectionService } from './master-election.service.js';

/** What the indicator reports of an election (terminus' `HealthIndicatorResult` shape). */
export interface MasterElectionHealthDetails {
  /**
   * `'up'` while the election runs and its Doozer connection is live,
   * whatever the role (a healthy slave is up); `'down'` otherwise.
   */
  readonly status: 'up' | 'down';
  /** The election's name. */
  readonly election: string;
  /**
   * This process's role, as `MasterElectionService.state$` reports it:
   * `'master'`, `'slave'`, `'candidate'` (no master known yet, or its
   * `@OnBecomeMaster` handlers still run), or `'stopped'`.
   */
  readonly role: ElectionRole;
  /** The current master's `host:port`, `''` when none is known. */
  readonly master: string;
  /** The current master term's fencing token, 0 when no master is known. */
  readonly term: number;
  /** Whether the Doozer connection is up. */
  readonly connected: boolean;
  /** Why it is down. */
  readonly reason?: string;
}

/** The result of {@link MasterElectionHealthIndicator.isHealthy}: `{ [key]: details }`. */
export type MasterElectionHealthResult<Key extends string = string> = Record<
  Key,
  MasterElectionHealthDetails
>;

interface IndicatorSession {
  up(data: object): unknown;
  down(data: object): unknown;
}
interface IndicatorService {
  check(key: string): IndicatorSession;
}

/**
 * Health indicator of an election for `@nestjs/terminus` (11 or later):
 * up, with the role, master and term, while the election runs and its
 * Doozer connection is live; down otherwise (not started yet, stopped,
 * disconnected, resynchronising, or a master stuck past its renew deadline).
 *
 * Add it to the `providers` of a module that imports `TerminusModule`:
 *
 * ```ts
 * @Get('health') @HealthCheck()
 * check() {
 *   return this.health.check([() => this.election.isHealthy('election')]);
 * }
 * ```
 */
@Injectable()
export class MasterElectionHealthIndicator {
  private indicators: IndicatorService | undefined;

  constructor(private readonly moduleRef: ModuleRef) {}

  /**
   * Checks the election registered as `name` (default: the default
   * registration) and reports it under `key`.
   */
  async isHealthy<Key extends string>(
    key: Key,
    name?: string,
  ): Promise<MasterElectionHealthResult<Key>> {
    const session = (await this.indicatorService()).check(key);
    const service = this.find(name);
    if (!service) {
      return session.down({
        election: name ?? '',
        role: 'stopped',
        master: '',
        term: 0,
        connected: false,
        reason: `no election ${name === undefined ? '(default registration)' : `"${name}"`} is registered with MasterElectionModule`,
      }) as MasterElectionHealthResult<Key>;
    }
    const h = service.health();
    const details = {
      election: service.name,
      role: h.role,
      master: h.master,
      term: h.term,
      connected: h.connected,
      ...(h.reason === undefined ? {} : { reason: h.reason }),
    };
    return (
      h.healthy ? session.up(details) : session.down(details)
    ) as MasterElectionHealthResult<Key>;
  }

  private find(name: string | undefined): MasterElectionService | undefined {
    try {
      return this.moduleRef.get<MasterElectionService>(
        name === undefined ? MasterElectionService : getMasterElectionToken(name),
        { strict: false },
      );
    } catch {
      return undefined;
    }
  }

  /** Terminus' `HealthIndicatorService`: the application's, or a fresh one (it is stateless). */
  private async indicatorService(): Promise<IndicatorService> {
    if (this.indicators) return this.indicators;
    const { HealthIndicatorService } = await import('@nestjs/terminus');
    let service: IndicatorService;
    try {
      service = this.moduleRef.get(HealthIndicatorService, { strict: false });
    } catch {
      service = new HealthIndicatorService();
    }
    this.indicators = service;
    return service;
  }
}
