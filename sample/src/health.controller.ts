import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { MasterElectionHealthIndicator } from 'nestjs-master-election';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly election: MasterElectionHealthIndicator,
  ) {}

  /**
   * 200 while the election runs and its Doozer connection is live (master
   * or slave alike), 503 otherwise, with `{ role, master, term, connected }`
   * under `election`.
   */
  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.election.isHealthy('election')]);
  }
}
