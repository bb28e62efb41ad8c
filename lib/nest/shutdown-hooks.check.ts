import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { LOGGER_CONTEXT } from './master-election.constants.js';
import { NO_SHUTDOWN_HOOKS } from './master-election.messages.js';
import { MasterElectionRegistry } from './master-election.registry.js';

/**
 * Warns once at bootstrap when the application takes part in an election
 * but nothing in the process handles SIGTERM (no `app.enableShutdownHooks()`):
 * such a replica dies on SIGTERM without resigning, and the others wait out
 * its lease. Checked on the next turn of the event loop, so that a call to
 * `enableShutdownHooks()` right after `NestFactory.createApplicationContext()`
 * (which bootstraps before it returns) counts.
 */
@Injectable()
export class ShutdownHooksCheck implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly registry: MasterElectionRegistry) {}

  /** @internal Nest lifecycle hook. */
  onApplicationBootstrap(): void {
    this.timer = setTimeout(() => this.check(), 0);
    this.timer.unref();
  }

  /** @internal Nest lifecycle hook. */
  onApplicationShutdown(): void {
    clearTimeout(this.timer);
  }

  private check(): void {
    const names = this.registry
      .list()
      .filter((s) => s.participating)
      .map((s) => s.name);
    if (names.length === 0 || process.listenerCount('SIGTERM') > 0) return;
    this.logger.warn(NO_SHUTDOWN_HOOKS(names));
  }
}
