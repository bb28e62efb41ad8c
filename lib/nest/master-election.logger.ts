import { Logger, type LoggerService } from '@nestjs/common';
import type { ElectionLogger } from '../election/index.js';
import { LOGGER_CONTEXT } from './master-election.constants.js';

/**
 * The least severe level a registration logs (`'silent'`: nothing). Lines
 * below it are dropped before they reach the logger; the application's own
 * log levels filter what is left.
 */
export type MasterElectionLogLevel = 'debug' | 'log' | 'warn' | 'error' | 'silent';

const RANK: Readonly<Record<MasterElectionLogLevel, number>> = {
  debug: 0,
  log: 1,
  warn: 2,
  error: 3,
  silent: 4,
};

/** The levels a {@link MasterElectionLogLevel} option may take, for messages. */
export const LOG_LEVELS: readonly MasterElectionLogLevel[] = Object.keys(
  RANK,
) as MasterElectionLogLevel[];

/** Whether `value` is a {@link MasterElectionLogLevel}. */
export const isLogLevel = (value: unknown): value is MasterElectionLogLevel =>
  typeof value === 'string' && Object.hasOwn(RANK, value);

/**
 * Where one registration logs: the `logger` option (default: Nest's
 * `Logger` with context `MasterElection`), below `logLevel` dropped. Also
 * handed to the election engine.
 */
export class ElectionLog implements ElectionLogger {
  constructor(
    private readonly logger: LoggerService = new Logger(LOGGER_CONTEXT),
    private readonly level: MasterElectionLogLevel = 'log',
  ) {}

  /** Whether a line of `level` would be written. */
  enabled(level: Exclude<MasterElectionLogLevel, 'silent'>): boolean {
    return RANK[level] >= RANK[this.level];
  }

  debug(message: string): void {
    if (this.enabled('debug')) this.logger.debug?.(message);
  }

  log(message: string): void {
    if (this.enabled('log')) this.logger.log(message);
  }

  warn(message: string): void {
    if (this.enabled('warn')) this.logger.warn(message);
  }

  /** An error line; `stack` only when given (a repeated failure is logged without it). */
  error(message: string, stack?: string): void {
    if (!this.enabled('error')) return;
    if (stack === undefined) this.logger.error(message);
    else this.logger.error(message, stack);
  }
}
