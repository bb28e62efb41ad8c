import { Injectable, Logger } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import { MasterElectionService, MasterOnly } from 'nestjs-master-election';
import { Subject, type Observable } from 'rxjs';

/** How often the leader-only job runs, in milliseconds. */
export const LEADER_JOB_INTERVAL_MS = 1000;

/** One run of the leader-only job. */
export interface LeaderJobRun {
  /** 1 for this process's first run, then 2, 3… */
  readonly run: number;
  /** The fencing token of the master term the run belonged to. */
  readonly fencingToken: number;
}

/**
 * A job that must run on one replica at a time: every replica schedules it
 * with `@Interval`, and `@MasterOnly()` lets the call through only on the
 * master (elsewhere it returns without running, logged at debug level).
 */
@Injectable()
export class LeaderJob {
  private readonly logger = new Logger(LeaderJob.name);
  private readonly runs = new Subject<LeaderJobRun>();
  private count = 0;

  /** Every run of the job in this process (real work would go where the log line is). */
  readonly runs$: Observable<LeaderJobRun> = this.runs.asObservable();

  constructor(private readonly election: MasterElectionService) {}

  @Interval(LEADER_JOB_INTERVAL_MS)
  @MasterOnly()
  run(): void {
    // Hand the fencing token to whatever the job writes to, so that a store
    // can refuse a deposed master's late writes (docs/election-protocol.md).
    const fencingToken = this.election.fencingToken;
    this.count += 1;
    this.logger.log(`leader-only job run #${this.count} (fencing token ${fencingToken})`);
    this.runs.next({ run: this.count, fencingToken });
  }
}
