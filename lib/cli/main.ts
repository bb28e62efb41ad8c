/**
 * `elect-run-command`: puts any program under a master election. Connects to
 * Doozer (or etcd, or PostgreSQL: see connect.ts), takes part in (or
 * follows) the election, runs the hooks on every change, supervises the
 * `--run` child while master, and shuts down cleanly.
 */
import { existsSync } from 'node:fs';
import { errorMessage } from '../shared/errors.js';
import { DoozerPermissionError, DoozerUriError } from '../doozer/errors.js';
import {
  ElectionConfigError,
  systemClock,
  type MasterElection,
  type ElectionState,
  type ForcedElection,
  type MasterElectionEventReceiver,
  type MasterTerm,
} from '../election/index.js';
import { backendWhere, connectBackend, type BackendConnection } from './connect.js';
import { childEnvironment } from './child-env.js';
import { HookRunner } from './hooks.js';
import { processIo, type CliIo } from './io.js';
import { createCliLogger, engineLogger, redactSecrets, type CliLogger } from './logger.js';
import {
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  PROGRAM,
  UsageError,
  parseCliArgs,
  usageFromConfigError,
  usageText,
  type CliOptions,
} from './options.js';
import { ChildSupervisor, watchdogScript, type ChildExit } from './supervisor.js';

export { processIo, type CliIo } from './io.js';

/** How long queued hooks may still run at shutdown before they are stopped. */
const HOOK_DRAIN_MS = 5_000;

/** What `--force-election` reports for each outcome (`ok: false`: a warning and the error hook). */
const FORCED: Readonly<Record<ForcedElection, { ok: boolean; line: string }>> = {
  'stepped-down': { ok: true, line: 'forced a new election (this process stepped down)' },
  deposed: { ok: true, line: 'forced a new election' },
  superseded: { ok: true, line: 'a new election took place meanwhile: nothing left to force' },
  'no-master': { ok: true, line: 'no master to force out: nothing forced' },
  'not-forced': { ok: false, line: 'the master kept renewing ahead of every attempt' },
  stopped: { ok: false, line: 'the election stopped' },
};

/**
 * Runs `elect-run-command` with `argv` (without `node` and the script) to its
 * end, and resolves with the exit status: 0 after SIGINT/SIGTERM (with
 * `--run`, the status of the child that the signal was forwarded to), 1 on a
 * fatal election error or a server that cannot be used, 2 on a bad command
 * line, and with `--run` the child's status when it exits by itself.
 */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  let options: CliOptions | null;
  try {
    options = parseCliArgs(argv, io.env, { pid: io.pid, writeOut: io.writeOut });
  } catch (e) {
    if (e instanceof UsageError) {
      io.writeErr(`${PROGRAM}: error: ${e.message}\n${usageText()}`);
      return EXIT_USAGE;
    }
    throw e;
  }
  if (options === null) return EXIT_OK; // --help
  return new ElectRunCommand(options, io).run();
}

/** One run of the CLI, from connecting to the exit status. */
class ElectRunCommand {
  private readonly log: CliLogger;
  private readonly hooks: HookRunner;
  private readonly supervisor: ChildSupervisor | undefined;
  private connection: BackendConnection | undefined;
  private election: MasterElection | undefined;
  private exitCode: number | undefined;
  private shuttingDown: Promise<number> | undefined;
  private resolveDone!: (code: number) => void;
  private readonly done = new Promise<number>((r) => (this.resolveDone = r));
  private readonly cleanups: (() => void)[] = [];

  constructor(
    private readonly opts: CliOptions,
    private readonly io: CliIo,
  ) {
    const store = opts.store;
    this.log = createCliLogger(`${PROGRAM}[${io.pid}]`, io.writeErr, opts.verbose, store);
    const env = childEnvironment(io.env, opts);
    this.hooks = new HookRunner({ log: this.log, argv0: PROGRAM, env });
    if (opts.run) {
      const run = opts.run;
      this.supervisor = new ChildSupervisor({
        command: run.command,
        args: run.args,
        graceMs: opts.killGraceMs,
        // Several feeds per renewal: the watchdog hears of each one soon after it.
        feedIntervalMs: Math.max(10, Math.floor(opts.timing.retryPeriodMs / 2)),
        log: this.log,
        env,
        onUnexpectedExit: (exit) => this.childExited(exit),
        onDeadlineStop: () => this.childStoppedAtDeadline(),
      });
    }
  }

  async run(): Promise<number> {
    const supervisor = this.supervisor;
    if (supervisor && !existsSync(watchdogScript())) {
      this.log.error(`cannot find the --run watchdog ${watchdogScript()}: reinstall the package`);
      return EXIT_FAILURE;
    }
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      this.cleanups.push(this.io.onSignal(signal, () => this.onSignal(signal)));
    }
    if (supervisor) {
      // Last resort (an uncaught error, process.exit elsewhere): no orphaned child.
      const killAll = (): void => supervisor.killAll();
      process.on('exit', killAll);
      this.cleanups.push(() => void process.off('exit', killAll));
    }
    try {
      const started = await this.start();
      if (started !== undefined) this.shutdown(started, 'could not start');
    } catch (e) {
      this.log.error(`unexpected error: ${describe(e)}`);
      this.shutdown(EXIT_FAILURE, 'unexpected error');
    }
    const code = await this.done;
    for (const c of this.cleanups.splice(0)) c();
    return code;
  }

  /** Connects and joins the election; returns an exit status when that failed. */
  private async start(): Promise<number | undefined> {
    const { opts, log } = this;
    const where = backendWhere(opts);
    try {
      this.connection = await connectBackend(opts, log);
    } catch (e) {
      return this.startupFailure(`cannot connect to ${where}`, e);
    }
    if (this.shuttingDown) {
      await this.connection.close(); // a signal came while connecting
      return undefined;
    }
    log.debug(`connected to ${where}`);

    const receiver: MasterElectionEventReceiver = {
      becomeMaster: (term) => this.becomeMaster(term),
      becomeSlave: (master, token) => this.becomeSlave(master, token),
      electionError: (err) => this.electionError(err),
      electionFatal: (err) => this.electionFatal(err),
    };
    const supervisor = this.supervisor;
    try {
      this.election = await this.connection.join({
        name: opts.name,
        address: opts.address,
        participating: opts.participate,
        receiver,
        ...opts.timing,
        // The --run watchdog reads the same monotonic clock: term deadlines mean the same there.
        clock: systemClock,
        logger: engineLogger(log),
        ...(supervisor ? { beforeRelease: () => this.stopChild(supervisor) } : {}),
      });
    } catch (e) {
      return this.startupFailure(`cannot join election ${JSON.stringify(opts.name)}`, e);
    }
    const election = this.election;
    if (this.shuttingDown) {
      await election.close(); // a signal came while joining
      await this.connection.close();
      return undefined;
    }
    log.log(
      `${opts.participate ? 'taking part in' : 'following'} election ${JSON.stringify(opts.name)} ` +
        `as ${opts.address} on ${where}`,
    );

    if (opts.observe) this.observe(election);
    if (opts.forceElection) {
      try {
        const forced = await election.forceMasterElection();
        const said = FORCED[forced];
        if (said.ok) log.log(said.line);
        else {
          // (The engine itself warns of a master that kept renewing.)
          if (forced !== 'not-forced') log.warn(`could not force an election: ${said.line}`);
          this.runErrorHook(`could not force an election: ${said.line}`);
        }
      } catch (e) {
        log.warn(`could not force an election: ${describe(e)}`);
        this.runErrorHook(`could not force an election: ${describe(e)}`);
      }
    }
    return undefined;
  }

  /** Reports a failure to connect or join; returns its exit status. */
  private startupFailure(what: string, e: unknown): number | undefined {
    if (this.shuttingDown) return undefined; // a signal came meanwhile: nothing to report
    if (e instanceof DoozerUriError) {
      this.io.writeErr(`${PROGRAM}: error: ${redactSecrets(e.message)}\n${usageText()}`);
      return EXIT_USAGE;
    }
    if (e instanceof ElectionConfigError) {
      const u = storeConfigError(this.opts, e) ?? usageFromConfigError(e);
      this.io.writeErr(`${PROGRAM}: error: ${u.message}\n${usageText()}`);
      return EXIT_USAGE;
    }
    const detail =
      e instanceof DoozerPermissionError ? `access refused: ${describe(e)}` : describe(e);
    const message = `${what}: ${detail}`;
    this.log.error(message);
    this.runErrorHook(message);
    return EXIT_FAILURE;
  }

  // ------------------------------------------------------------- election events

  /**
   * Runs `--master-cmd` (behind the hooks already queued) and waits for it,
   * then starts the `--run` child. A failing `--master-cmd` rejects, as the
   * Go tool's `BecomeMaster` returns its error: the engine then ends the
   * term, reports the error (`--error-cmd`), deletes the election file so a
   * new election runs, and sits that election out.
   */
  private async becomeMaster(term: MasterTerm): Promise<void> {
    const { opts, log } = this;
    if (term.signal.aborted || this.shuttingDown) return;
    log.log(`became master (term ${term.fencingToken})`);
    term.signal.addEventListener(
      'abort',
      () => log.log(`no longer master: ${describe(term.signal.reason)}`),
      { once: true },
    );
    const env = { MASTER: opts.address, ...termEnv(term) };
    if (opts.masterCmd) {
      const outcome = await this.hooks.submit({
        kind: 'master-cmd',
        command: opts.masterCmd,
        env,
      });
      // A term that ended meanwhile, or shutdown (which stops hooks), has nothing to give up.
      if (term.signal.aborted || this.shuttingDown) return;
      if (!outcome.ok) {
        throw new Error(`--master-cmd ${outcome.reason}: giving up mastership`);
      }
    }
    if (this.supervisor) {
      if (!term.isValid()) return; // the term ended while the hook ran (this process was frozen)
      this.supervisor.start({ ...env, ...termEnv(term) }, () => term.deadline);
      // beforeRelease stops it; this guards a term that ends without one (the election stopping).
      const supervisor = this.supervisor;
      term.signal.addEventListener('abort', () => void this.stopChild(supervisor), { once: true });
    }
  }

  private becomeSlave(master: string, fencingToken: number): void {
    this.log.log(`following master ${master} (term ${fencingToken})`);
    const cmd = this.opts.slaveCmd;
    const env = { MASTER: master, FENCING_TOKEN: String(fencingToken) };
    if (cmd) this.hooks.enqueue({ kind: 'slave-cmd', command: cmd, env });
  }

  private electionError(err: Error): void {
    // The engine has logged it as a warning.
    this.runErrorHook(err.message);
  }

  private electionFatal(err: Error): void {
    // The engine has logged it as an error.
    this.runErrorHook(err.message);
    this.shutdown(EXIT_FAILURE, 'fatal election error');
  }

  private runErrorHook(text: string): void {
    const cmd = this.opts.errorCmd;
    if (!cmd) return;
    const master = this.election?.getCurrentMaster() ?? '';
    this.hooks.enqueue({
      kind: 'error-cmd',
      command: cmd,
      env: { MASTER: master },
      args: [this.opts.store ? this.opts.store.redact(redactSecrets(text)) : redactSecrets(text)],
    });
  }

  /** `--observe`: one line per change of master (or of its term). */
  private observe(election: MasterElection): void {
    let last: string | undefined;
    const sub = election.state$.subscribe((s: ElectionState) => {
      if (s.role === 'stopped') return;
      const line = s.master === '' ? 'no master' : `master ${s.master} term ${s.term}`;
      if (line === last) return;
      last = line;
      this.io.writeOut(`${line}\n`);
    });
    this.cleanups.push(() => sub.unsubscribe());
  }

  // ---------------------------------------------------------------- the child

  /** Stops the `--run` child at the end of a term (also `beforeRelease`). */
  private async stopChild(supervisor: ChildSupervisor): Promise<void> {
    await supervisor.stop('SIGTERM');
  }

  private childExited(exit: ChildExit): void {
    if (exit.watchdogLost) {
      this.log.error("the dead man's switch of the supervised command died: stopping");
      this.runErrorHook('the watchdog of the --run command died');
      this.shutdown(EXIT_FAILURE, 'the watchdog died');
      return;
    }
    this.log.log(`the supervised command ended by itself (status ${exit.status}): resigning`);
    this.shutdown(exit.status, 'the supervised command ended');
  }

  /**
   * The watchdog stopped the child at the term's renew deadline. Normally
   * the term has ended too (this process was frozen, or its renewals
   * failed). If it is still valid here (the watchdog's deadline feeds came
   * late), this process is master with no leader-only work running: it gives
   * the term up, so that a new election (which it may win again, restarting
   * the child) replaces it, rather than holding mastership idle.
   */
  private childStoppedAtDeadline(): void {
    const election = this.election;
    if (this.shuttingDown || !election?.currentTerm?.isValid()) return;
    this.log.warn(
      'the watchdog stopped the supervised command while this term is still valid: giving the term up',
    );
    election.forceMasterElection().catch((e: unknown) => {
      this.log.warn(`could not give the term up: ${describe(e)}`);
    });
  }

  // ---------------------------------------------------------------- shutdown

  /**
   * SIGINT and SIGTERM are forwarded to the child. SIGHUP (the terminal went
   * away) stops it with SIGTERM: many programs read SIGHUP as "reload", and
   * the child, in its own session, must not outlive this process.
   */
  private onSignal(signal: NodeJS.Signals): void {
    const forward = signal === 'SIGHUP' ? 'SIGTERM' : signal;
    if (this.shuttingDown) {
      this.log.log(`${signal} received while shutting down`);
      if (this.supervisor) void this.supervisor.forward(forward);
      return;
    }
    this.log.log(`${signal} received: shutting down`);
    this.shutdown(EXIT_OK, signal, forward);
  }

  /**
   * Stops everything once: forwards `signal` to the child (with `--run`),
   * resigns (the child is stopped before the lease is released), lets the
   * queued hooks run, closes the Doozer client, then resolves `run()` with
   * `code` (or the child's status, when the signal was forwarded to it).
   */
  private shutdown(code: number, why: string, signal?: NodeJS.Signals): void {
    if (this.shuttingDown) return;
    this.exitCode = code;
    this.shuttingDown = this.runShutdown(why, signal).then(
      () => this.exitCode ?? code,
      (e: unknown) => {
        this.log.error(`error while shutting down: ${describe(e)}`);
        return this.exitCode ?? EXIT_FAILURE;
      },
    );
    void this.shuttingDown.then((c) => this.resolveDone(c));
  }

  private async runShutdown(why: string, signal: NodeJS.Signals | undefined): Promise<void> {
    const { log, supervisor } = this;
    log.debug(`shutting down: ${why}`);
    // A stuck close must not keep the process forever.
    const limit = this.opts.timing.leaseMs * 2 + HOOK_DRAIN_MS;
    const watchdog = setTimeout(() => {
      log.error(`shutdown did not finish within ${limit} ms; exiting`);
      supervisor?.killAll();
      this.resolveDone(this.exitCode ?? EXIT_FAILURE);
    }, limit);
    watchdog.unref();
    try {
      // The signal goes to the child first; close() resigns, and the lease
      // is released only once the child is gone (beforeRelease).
      const forwarded = signal && supervisor?.running ? supervisor.forward(signal) : undefined;
      await this.election?.close();
      if (supervisor) {
        await supervisor.stop('SIGTERM'); // a child of a term that already ended
        const exit = await forwarded;
        if (exit) this.exitCode = exit.status;
      }
      await this.hooks.drain(HOOK_DRAIN_MS);
      await this.connection?.close();
      log.debug(`exiting with status ${this.exitCode}`);
    } finally {
      clearTimeout(watchdog);
    }
  }
}

/**
 * The term's variables for hooks and the child: its fencing token and its
 * renew deadline as it stands now (it moves on with every renewal), as Unix
 * time in ms (`TERM_DEADLINE`, an estimate from this machine's wall clock)
 * and on the monotonic clock (`TERM_DEADLINE_MONOTONIC_MS`, CLOCK_MONOTONIC).
 */
function termEnv(term: MasterTerm): Record<string, string> {
  const left = term.deadline - systemClock.now();
  return {
    FENCING_TOKEN: String(term.fencingToken),
    TERM_DEADLINE: String(Math.floor(Date.now() + left)),
    TERM_DEADLINE_MONOTONIC_MS: String(Math.floor(term.deadline)),
  };
}

/**
 * A bad option of the etcd or PostgreSQL store (found when connecting) as a
 * usage error naming `--etcd-uri` or `--postgres-uri`; `undefined` for the
 * engine's own options.
 */
function storeConfigError(opts: CliOptions, e: ElectionConfigError): UsageError | undefined {
  const store = opts.store;
  if (store === undefined || /^(leaseMs|renewDeadlineMs|retryPeriodMs)$/.test(e.option)) {
    return undefined;
  }
  return new UsageError(`${store.flag}: ${store.redact(redactSecrets(e.message))}`);
}

function describe(e: unknown): string {
  return redactSecrets(errorMessage(e));
}
