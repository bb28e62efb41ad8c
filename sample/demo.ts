/**
 * `npm run demo`: three replicas of the sample application elect a master;
 * the demo kills the master (failover), then stops the next one gracefully
 * (handover), and prints how long each took. It writes the story as a
 * timeline, `demo-timeline.html`, in the directory it is run from.
 *
 *     node dist/sample/demo.js [--backend doozer|etcd|postgres] [--short] [--verbose]
 *
 * The store (sample/demo/backend.ts): by default the embedded Doozer server,
 * run as the package's `doozer-dev-server` bin (a child process), unless
 * `DOOZER_URI` (and `DOOZER_BOOT_URI` for a `cn=` URI) names one; with
 * `--backend etcd` a local etcd, with `--backend postgres` an embedded
 * PostgreSQL, both run by sample/demo/store-server.ts. The replicas get it as
 * `ELECTION_URI`. See docs/sample-and-demo.md.
 */
import type { LockCapabilities } from 'nestjs-master-election';
import { parseArgs, USAGE, type DemoOptions } from './demo/args.js';
import {
  DemoUsageError,
  failoverRule,
  findEtcd,
  serverGone,
  startStore,
  type DemoStore,
  type FailoverRule,
} from './demo/backend.js';
import { checkJobRuns, showAgreement, showJobRun } from './demo/checks.js';
import { bold, dim, green, ms, red, say, yellow } from './demo/console.js';
import { MasterObserver, type LeaseOnStart, type MasterSighting } from './demo/observer.js';
import { Replica, type ReplicaExit, type ReplicaLog } from './demo/replica.js';
import { DEMO_TIMINGS, type DemoTimings } from './demo/timings.js';
import { DemoError, waitFor, within } from './demo/wait.js';
import { describeLease, firstWaitsLease, summary, type Results } from './demo/summary.js';
import { StoryRecorder, writeTimeline, type DemoStory } from './timeline/index.js';

/** The demo's own election, so that it never meddles with the sample's default one. */
const ELECTION = 'sample-demo';
const LABELS = ['A', 'B', 'C'] as const;
/** Limit of the waits that do not depend on the timings (booting Nest, answering HTTP): generous, for a loaded machine. */
const PATIENCE_MS = 90_000;
/** Limit of a store server's start: PostgreSQL's initdb alone can take a minute on a loaded machine. */
const SERVER_START_MS = 180_000;

/** Ctrl-C (or SIGTERM) while the demo runs. */
class Interrupted extends Error {
  override readonly name = 'Interrupted';
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

const describeExit = (exit: ReplicaExit): string =>
  exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;

class Demo {
  private readonly timings: DemoTimings;
  private readonly replicas: Replica[] = [];
  private readonly failure = new AbortController();
  private store: DemoStore | undefined;
  private readonly failoverRule: FailoverRule;
  private observer: MasterObserver | undefined;
  private cleaning: Promise<void> | undefined;
  /** What the timeline (demo-timeline.html) shows. */
  private readonly story: StoryRecorder;

  constructor(private readonly options: DemoOptions) {
    this.timings = options.short ? DEMO_TIMINGS.short : DEMO_TIMINGS.normal;
    this.failoverRule = failoverRule(options.backend, this.timings);
    this.story = new StoryRecorder('nestjs-master-election demo', this.timings);
  }

  /** The story recorded so far, for the timeline. */
  storySoFar(): DemoStory {
    return this.story.story();
  }

  /** Aborts with `reason` whatever the demo is waiting for. */
  stop(reason: Error): void {
    if (!this.failure.signal.aborted) this.failure.abort(reason);
  }

  /** Last resort, on exit: no replica (nor the server) outlives the demo. */
  killAll(): void {
    for (const r of this.replicas) r.kill('SIGKILL');
    this.store?.server?.kill();
  }

  /** Runs the three steps; throws a {@link DemoError} (or the abort reason) when one fails. */
  async run(): Promise<Results> {
    say(bold('nestjs-master-election demo: three replicas of the sample app elect one master'));
    say();
    const store = await this.startStore();
    this.intro();
    const { observer, lease, capabilities } = await MasterObserver.start(
      store.target,
      ELECTION,
      this.timings,
    );
    this.observer = observer;
    observer.masters$.subscribe((s) => this.story.sighting(s));
    const first = await this.firstElection(this.replicaEnv(store), lease, capabilities);
    const failover = await this.failover(first.master);
    const handover = await this.handover(failover.master);
    checkJobRuns(this.replicas, observer.terms);
    return {
      backend: this.options.backend,
      timings: this.timings,
      lease,
      firstWaitsLease: firstWaitsLease(lease, capabilities),
      failover: this.failoverRule,
      bootMs: first.bootMs,
      firstElectionMs: first.ms,
      failoverMs: failover.ms,
      handoverMs: handover.ms,
      jobRuns: this.replicas.map((r) => ({ label: r.label, runs: r.jobRuns.length })),
    };
  }

  /** What the timings mean. */
  private intro(): void {
    const { leaseMs, renewDeadlineMs, retryPeriodMs } = this.timings;
    say(
      `${bold('Timings')}   lease ${leaseMs} ms, renew deadline ${renewDeadlineMs} ms, retry period ${retryPeriodMs} ms${this.options.short ? ' (--short)' : ''}`,
    );
    say(
      `          The master renews its lease every ${retryPeriodMs} ms and steps down if it cannot`,
    );
    say(`          renew for ${renewDeadlineMs} ms; ${this.failoverRule.who}`);
    say(
      `          ${dim(`(Defaults: 10000/7000/2000 ms; lease ${leaseMs} ms here, shortened so the demo is quick.)`)}`,
    );
    if (!this.options.verbose) {
      say(`${bold('Logs')}      the replicas' errors only ${dim('(--verbose: every line)')}`);
    }
  }

  /** Step 1: three replicas start; the first master is elected. */
  private async firstElection(
    env: NodeJS.ProcessEnv,
    lease: LeaseOnStart,
    capabilities: LockCapabilities,
  ): Promise<{ master: Replica; ms: number; bootMs: number }> {
    say();
    say(
      bold('1. Start three replicas') +
        dim(`  (node dist/sample/src/main.js, election "${ELECTION}")`),
    );
    const spawnedAt = performance.now();
    for (const label of LABELS) this.startReplica(label, env);
    await within(
      Promise.all(this.replicas.map((r) => r.ready)),
      'the replicas to start',
      PATIENCE_MS,
      this.failure.signal,
    );
    for (const r of this.replicas) {
      say(`   ${bold(r.label)}  pid ${String(r.pid).padEnd(7)} http://${r.address}`);
      this.story.replica({ label: r.label, address: r.address });
    }
    const { leaseMs } = this.timings;
    for (const line of describeLease(lease, leaseMs, capabilities, this.options.backend)) {
      say(`   ${line}`);
    }
    // A master left behind by an earlier run (against DOOZER_URI) is not ours: wait
    // until our replicas have replaced it.
    const ours = (s: MasterSighting): boolean => this.replicas.some((r) => r.address === s.master);
    const { seen, replica } = await this.nextMaster(ours, 'the first master', leaseMs);
    const elapsed = seen.at - spawnedAt;
    this.story.mark('first-election', spawnedAt, seen.at, `spawn of ${LABELS.join(', ')}`);
    say(
      `   ${green('master:')} ${this.name(replica)}, fencing token ${seen.term}, ${ms(elapsed)} after spawning the replicas`,
    );
    await this.showTerm(replica, seen.term, true);
    const bootMs = Math.min(...this.replicas.map((r) => r.readyAt)) - spawnedAt;
    return { master: replica, ms: elapsed, bootMs };
  }

  /** Step 2: the master dies without resigning; the others wait out its lease. */
  private async failover(master: Replica): Promise<{ master: Replica; ms: number }> {
    const { leaseMs, retryPeriodMs } = this.timings;
    say();
    say(
      bold(`2. kill -9 the master, ${master.label}`) +
        dim(`  (pid ${master.pid}: no chance to resign, its lease must run out)`),
    );
    const killedAt = performance.now();
    master.kill('SIGKILL');
    const { seen, replica } = await this.nextMaster(
      (s) => s.master !== master.address,
      `a master other than ${master.label}`,
      leaseMs + retryPeriodMs,
    );
    const elapsed = seen.at - killedAt;
    this.story.mark('failover', killedAt, seen.at, `kill -9 ${master.label}`);
    say(
      `   ${green('master:')} ${this.name(replica)}, fencing token ${seen.term}, ${bold(ms(elapsed))} after the kill ${dim(`(bound: ${this.failoverRule.bound})`)}`,
    );
    await this.showTerm(replica, seen.term, false);
    return { master: replica, ms: elapsed };
  }

  /** Step 3: the master shuts down gracefully and resigns; the other takes over at once. */
  private async handover(master: Replica): Promise<{ master: Replica; ms: number }> {
    say();
    say(
      bold(`3. SIGTERM the master, ${master.label}`) +
        dim('  (enableShutdownHooks: it resigns in beforeApplicationShutdown)'),
    );
    const termAt = performance.now();
    master.kill('SIGTERM');
    const { seen, replica } = await this.nextMaster(
      (s) => s.master !== master.address,
      `a master other than ${master.label}`,
      0,
    );
    const elapsed = seen.at - termAt;
    this.story.mark('handover', termAt, seen.at, `SIGTERM ${master.label}`);
    say(
      `   ${green('master:')} ${this.name(replica)}, fencing token ${seen.term}, ${bold(ms(elapsed))} after SIGTERM ${dim('(no lease to wait out)')}`,
    );
    const exit = await within(
      master.exited,
      `${master.label} to exit`,
      PATIENCE_MS,
      this.failure.signal,
    );
    const how = exit.signal
      ? `Nest re-raises ${exit.signal} once its shutdown hooks have run`
      : describeExit(exit);
    say(`   ${master.label} exited ${ms(exit.at - termAt)} after SIGTERM ${dim(`(${how})`)}`);
    await this.showTerm(replica, seen.term, false);
    return { master: replica, ms: elapsed };
  }

  /** Stops every replica (SIGTERM, then SIGKILL if it hangs), the observer and the store's server. Idempotent. */
  cleanup(): Promise<void> {
    this.cleaning ??= this.doCleanup();
    return this.cleaning;
  }

  private async doCleanup(): Promise<void> {
    const running = this.replicas.filter((r) => r.running);
    if (running.length > 0) {
      say();
      say(dim(`Stopping ${running.map((r) => r.label).join(', ')}…`));
    }
    await Promise.all(
      running.map(async (r) => {
        r.kill('SIGTERM');
        const hung = setTimeout(() => r.kill('SIGKILL'), 10_000);
        await r.exited;
        clearTimeout(hung);
      }),
    );
    await this.observer?.close().catch(() => undefined);
    // Last, so that the replicas could resign.
    await this.store?.server?.stop();
  }

  // ---------------------------------------------------------------- helpers

  private async startStore(): Promise<DemoStore> {
    const store = await startStore(this.options.backend, SERVER_START_MS, this.failure.signal);
    this.store = store;
    void store.server?.exited.then(() => {
      if (!this.cleaning) this.stop(serverGone(store.backend));
    });
    say(store.intro);
    return store;
  }

  /** The replicas' environment: the store as `ELECTION_URI`, the timings, JSON logs. */
  private replicaEnv(store: DemoStore): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ELECTION_URI: store.target.uri,
      PORT: '0',
      ELECTION_NAME: ELECTION,
      ELECTION_LEASE_MS: String(this.timings.leaseMs),
      ELECTION_RENEW_DEADLINE_MS: String(this.timings.renewDeadlineMs),
      ELECTION_RETRY_PERIOD_MS: String(this.timings.retryPeriodMs),
      LOG_FORMAT: 'json',
      LOG_LEVEL: this.options.verbose ? 'debug' : 'log',
    };
    delete env.DOOZER_URI;
    if (store.target.bootUri === undefined) delete env.DOOZER_BOOT_URI;
    else env.DOOZER_BOOT_URI = store.target.bootUri;
    return env;
  }

  private startReplica(label: string, env: NodeJS.ProcessEnv): Replica {
    const replica = new Replica(label, env);
    this.replicas.push(replica);
    replica.logs$.subscribe((log) => this.showLog(replica, log));
    void replica.exited.then((exit) => {
      if (!replica.stopping) {
        this.stop(
          new DemoError(
            `replica ${label} exited unexpectedly (${describeExit(exit)})${replica.lastLines()}`,
          ),
        );
      }
    });
    return replica;
  }

  /** Child output: everything with --verbose, otherwise only errors. */
  private showLog(replica: Replica, log: ReplicaLog): void {
    const loud = ['error', 'fatal', 'stderr'].includes(log.level);
    if (!loud && !this.options.verbose) return;
    const colour = loud ? red : log.level === 'warn' ? yellow : dim;
    const context = log.context ? `[${log.context}] ` : '';
    say(colour(`     ${replica.label} | ${log.level.padEnd(5)} ${context}${log.message}`));
  }

  /**
   * Waits until the observer sees a master matching `predicate` (for at most
   * `expectedMs` plus {@link PATIENCE_MS}), and finds its replica.
   */
  private async nextMaster(
    predicate: (seen: MasterSighting) => boolean,
    what: string,
    expectedMs: number,
  ): Promise<{ seen: MasterSighting; replica: Replica }> {
    const seen = await waitFor(
      this.observer!.masters$,
      (s) => s.master !== '' && predicate(s),
      what,
      expectedMs + PATIENCE_MS,
      this.failure.signal,
    );
    const replica = this.replicas.find((r) => r.address === seen.master);
    if (!replica) {
      throw new DemoError(
        `the master ${seen.master} is not one of the demo's replicas: is another process taking part in election "${ELECTION}"?`,
      );
    }
    return { seen, replica };
  }

  /** Every live replica names `master` on GET /election; the job ran on it in term `term`. */
  private async showTerm(master: Replica, term: number, first: boolean): Promise<void> {
    const wait = { patienceMs: PATIENCE_MS, signal: this.failure.signal };
    await showAgreement(this.replicas, master, term, wait);
    await showJobRun(this.replicas, master, term, first, wait);
  }

  private name(r: Replica): string {
    return `${bold(r.label)} (${r.address})`;
  }
}

/** Writes the timeline next to where the demo runs; a directory that cannot take it only costs a warning. */
function showTimeline(story: DemoStory): void {
  try {
    say(`${bold('Timeline')}  ${writeTimeline(story)}  ${dim('(open it in a browser)')}`);
  } catch (err) {
    say(yellow(`Timeline not written: ${err instanceof Error ? err.message : String(err)}`));
  }
}

async function main(): Promise<number> {
  let options: DemoOptions | 'help';
  try {
    options = parseArgs(process.argv.slice(2));
    // A missing etcd is told before anything starts.
    if (options !== 'help' && options.backend === 'etcd') findEtcd();
  } catch (err) {
    if (!(err instanceof DemoUsageError)) throw err;
    say(red(err.message));
    return 2;
  }
  if (options === 'help') {
    say(USAGE);
    return 0;
  }
  const demo = new Demo(options);
  let interrupts = 0;
  const interrupt = (signal: NodeJS.Signals): void => {
    if (++interrupts === 1) {
      demo.stop(new Interrupted(signal));
      return;
    }
    demo.killAll(); // a second Ctrl-C: no more waiting
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  process.on('exit', () => demo.killAll());

  try {
    const results = await demo.run();
    const story = demo.storySoFar();
    await demo.cleanup();
    summary(results);
    showTimeline(story);
    return 0;
  } catch (err) {
    say();
    if (err instanceof Interrupted) {
      say(yellow(`Interrupted (${err.signal}): cleaning up.`));
    } else {
      say(red(`Demo failed: ${err instanceof Error ? err.message : String(err)}`));
      if (options.verbose && err instanceof Error && err.stack) say(dim(err.stack));
    }
    await demo.cleanup().catch((e: unknown) => say(red(`cleanup failed: ${String(e)}`)));
    return err instanceof Interrupted ? (err.signal === 'SIGINT' ? 130 : 143) : 1;
  }
}

void main()
  .catch((err: unknown) => {
    say(red(err instanceof Error ? err.message : String(err)));
    return 1;
  })
  .then((code) => {
    process.exitCode = code;
    // Everything is closed by now; should a handle linger, do not hang.
    setTimeout(() => process.exit(code), 2000).unref();
  });
