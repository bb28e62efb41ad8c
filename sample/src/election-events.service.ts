import { Injectable, Logger } from '@nestjs/common';
import {
  OnBecomeMaster,
  OnBecomeSlave,
  OnElectionError,
  OnElectionFatal,
  type MasterTerm,
} from 'nestjs-master-election';

/** Logs what the election tells this replica. */
@Injectable()
export class ElectionEvents {
  private readonly logger = new Logger('Election');

  /**
   * Runs before the replica counts as master (`@MasterOnly` methods start
   * once every `@OnBecomeMaster` handler has returned). Start leader-only
   * resources here and stop them when `term.signal` aborts.
   */
  @OnBecomeMaster()
  becomeMaster(term: MasterTerm): void {
    this.logger.log(`became master (fencing token ${term.fencingToken})`);
    term.signal.addEventListener(
      'abort',
      () => this.logger.log(`master term ${term.fencingToken} ended`),
      { once: true },
    );
  }

  /** Another replica is master: at start, and at every change of master. */
  @OnBecomeSlave()
  becomeSlave(master: string): void {
    this.logger.log(`following master ${master}`);
  }

  /** A non-fatal error, for example a term that ended because the lease could not be renewed. */
  @OnElectionError()
  electionError(err: Error): void {
    this.logger.warn(`election error: ${err.message}`);
  }

  /** The election stopped for good (for example, Doozer refused the secret); /health reports down. */
  @OnElectionFatal()
  electionFatal(err: Error): void {
    this.logger.error(`election stopped: ${err.message}`);
  }
}
