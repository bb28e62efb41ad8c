/**
 * Command-line options of `elect-run-command`: parsing with commander and
 * validation, without side effects, so that every usage error is found
 * before anything connects.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { DoozerUriError } from '../doozer/errors.js';
import { parseDoozerUri, type DoozerUri } from '../doozer/uri.js';
import {
  DEFAULT_LEASE_MS,
  DEFAULT_RENEW_DEADLINE_MS,
  DEFAULT_RETRY_PERIOD_MS,
  ElectionConfigError,
  resolveElectionOptions,
  validateAddress,
  validateElectionName,
} from '../election/index.js';
import { redactSecrets } from './logger.js';
import { backendFromGeneralUri, storeFromFlags, type StoreUri } from './store-uri.js';
import { UsageError } from './usage-error.js';

/** The program's name, in usage messages and log prefixes. */
export const PROGRAM = 'elect-run-command';

/** Exit status: clean shutdown. */
export const EXIT_OK = 0;
/** Exit status: fatal election error, or the Doozer server could not be used. */
export const EXIT_FAILURE = 1;
/** Exit status: bad command line (flags, URI, timings). */
export const EXIT_USAGE = 2;

export { UsageError } from './usage-error.js';

/** The election timings, with the engine's defaults applied. */
export interface CliTiming {
  readonly leaseMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

/** A validated command line. */
export interface CliOptions {
  /** Election name (`--name`). */
  readonly name: string;
  /** Whether this process runs for master (`--participate`). */
  readonly participate: boolean;
  /** Force a new election at start (`--force-election`). */
  readonly forceElection: boolean;
  /** Address advertised as master (`--address`, default `[::1]:<pid>`). */
  readonly address: string;
  /** Shell command run on becoming master (`--master-cmd`). */
  readonly masterCmd: string | undefined;
  /** Shell command run on every new master that is not this process (`--slave-cmd`). */
  readonly slaveCmd: string | undefined;
  /** Shell command run with the error text as `$1` (`--error-cmd`). */
  readonly errorCmd: string | undefined;
  /**
   * The Doozer URI (`--doozer-uri` or `$DOOZER_URI`); prints with the secret
   * redacted. `undefined` when `store` names another backend.
   */
  readonly doozerUri: DoozerUri | undefined;
  /** The etcd or PostgreSQL backend (`--etcd-uri`, `--postgres-uri`), instead of Doozer. */
  readonly store: StoreUri | undefined;
  /** Give hooks and the `--run` child the store URI's password (`--pass-store-password`). */
  readonly passStorePassword: boolean;
  /** The boot URI resolving a `cn=` cluster name (`--doozer-boot-uri` or `$DOOZER_BOOT_URI`). */
  readonly doozerBootUri: string | undefined;
  /** The command supervised while master (`--run -- CMD ARGS...`). */
  readonly run: { readonly command: string; readonly args: readonly string[] } | undefined;
  /** Print every change of master on stdout (`--observe`). */
  readonly observe: boolean;
  /** Give hooks and the `--run` child the URI's `sk=` secret in `DOOZER_URI` (`--pass-doozer-secret`). */
  readonly passDoozerSecret: boolean;
  /** Log the engine's and the client's debug messages (`--verbose`). */
  readonly verbose: boolean;
  /** Election timings, validated by the engine. */
  readonly timing: CliTiming;
  /** How long a `--run` child gets between SIGTERM and SIGKILL; see {@link killGraceMs}. */
  readonly killGraceMs: number;
}

/** Where {@link parseCliArgs} writes `--help`. */
export interface ParseIo {
  /** This process's id, for the default address `[::1]:<pid>`. */
  readonly pid: number;
  /** Receives the help text. */
  writeOut(text: string): void;
}

/**
 * The grace period of a `--run` child between SIGTERM and SIGKILL when
 * mastership is lost: `leaseMs - renewDeadlineMs` (the time between the end of
 * a term and the earliest moment another replica may take over) minus a
 * safety margin of 20% of it, and at least 100 ms, so that the SIGKILL lands
 * and the child is gone before anyone else can start their copy. Never
 * negative (0: SIGKILL right after SIGTERM).
 */
export function killGraceMs(leaseMs: number, renewDeadlineMs: number): number {
  const gap = leaseMs - renewDeadlineMs;
  const margin = Math.max(100, gap * 0.2);
  return Math.max(0, Math.floor(gap - margin));
}

const TIMING_FLAGS: Record<string, string> = {
  leaseMs: '--lease-ms',
  renewDeadlineMs: '--renew-deadline-ms',
  retryPeriodMs: '--retry-period-ms',
};

/**
 * A flag's number of milliseconds: decimal digits only, with an optional
 * fraction (`1500`, `2.5`). `Number()` would also take `0x10`, `1e3`, `0b1`
 * and surrounding blanks, which nobody means as a timing.
 */
export function milliseconds(value: string): number {
  if (!/^-?[0-9]+(\.[0-9]+)?$/.test(value)) {
    throw new InvalidArgumentError('expected a decimal number of milliseconds, e.g. 1500');
  }
  return Number(value);
}

function buildProgram(io: ParseIo): Command {
  return new Command(PROGRAM)
    .description(
      'Takes part in (or follows) a master election on a Doozer lock server (or on etcd or ' +
        'PostgreSQL) and runs commands ' +
        'when this process becomes master or slave. With --run, supervises a long-running ' +
        'command only while this process is master.',
    )
    .usage('[options] [--run -- command [args...]]')
    .option('--name <name>', 'election name (one Doozer path component)', 'test')
    .option('--participate', 'take part in elections (without it the process is passive)')
    .option('--force-election', 'force a new election at start')
    .option('--address <host:port>', 'address advertised while master (default: [::1]:<pid>)')
    .option('--master-cmd <cmd>', 'shell command run on becoming master ($MASTER: own address)')
    .option(
      '--slave-cmd <cmd>',
      'shell command run on each new master of another process ($MASTER)',
    )
    .option(
      '--error-cmd <cmd>',
      'shell command run on an election error, with the error text appended as its last argument',
    )
    .option(
      '--uri <uri>',
      'any backend, chosen by its scheme: doozer:, etcd://, postgres:// (default: $ELECTION_URI)',
    )
    .option(
      '--doozer-uri <uri>',
      'Doozer URI, e.g. doozer:?ca=127.0.0.1:8046 (default: $DOOZER_URI)',
    )
    .option(
      '--etcd-uri <uri>',
      'run the election on etcd instead: etcd://[user:password@]host:port[,host:port...][/prefix]',
    )
    .option(
      '--postgres-uri <uri>',
      'run the election on PostgreSQL instead: postgres://user:password@host:port/database',
    )
    .option(
      '--doozer-boot-uri <uri>',
      'boot URI resolving a cn= cluster name (default: $DOOZER_BOOT_URI)',
    )
    .option('--run', 'supervise the command given after "--" while this process is master')
    .option('--observe', 'print every change of master on stdout, one line each')
    .option(
      '--pass-doozer-secret',
      'give the hooks and the --run child the sk= secret in $DOOZER_URI (default: removed)',
    )
    .option(
      '--pass-store-password',
      'give the hooks and the --run child the password in $ETCD_URI / $POSTGRES_URI (default: removed)',
    )
    .option(
      '--lease-ms <ms>',
      `others replace a master not seen renewing for this long (default: ${DEFAULT_LEASE_MS})`,
      milliseconds,
    )
    .option(
      '--renew-deadline-ms <ms>',
      `a master that cannot renew for this long steps down (default: ${DEFAULT_RENEW_DEADLINE_MS}, at most 70% of --lease-ms)`,
      milliseconds,
    )
    .option(
      '--retry-period-ms <ms>',
      `how often the master renews its lease (default: ${DEFAULT_RETRY_PERIOD_MS}, at most --renew-deadline-ms / 3.5)`,
      milliseconds,
    )
    .option('-v, --verbose', "log the election's and the Doozer client's debug messages")
    .argument('[command...]', 'with --run: the command to supervise, and its arguments')
    .passThroughOptions()
    .helpOption('-h, --help', 'show this help')
    .addHelpText(
      'after',
      `
Hooks run through /bin/sh -c, one at a time, in event order, with MASTER,
FENCING_TOKEN and TERM_DEADLINE set; hooks and the --run child get DOOZER_URI
without its secret unless --pass-doozer-secret (ETCD_URI or POSTGRES_URI
without the password unless --pass-store-password). A --run child is stopped by a
watchdog at its term's renew deadline even if this process is frozen or killed.
Exit status: 0 after SIGINT/SIGTERM (with --run: the child's status), 1 on a
fatal election error or when the Doozer server cannot be used, 2 on a bad
command line, and with --run the child's status when it exits by itself
(128 + signal number when it was killed). See docs/cli.md.

Example:
  DOOZER_URI=doozer:?ca=127.0.0.1:8046 ${PROGRAM} --participate --run -- node worker.js`,
    )
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.writeOut(s),
      writeErr: () => {},
      outputError: () => {},
    });
}

/**
 * Rewrites Go-style flags (`-name x`, `-participate`, `-lease-ms=5`; Go's
 * flag package takes one dash or two) to the `--` form commander expects,
 * and Go's explicit booleans (`-participate=true`, `--participate=false`)
 * to a bare flag or nothing. Only the options before the first operand or
 * `--` are touched: the rest belongs to the `--run` command.
 *
 * @param longs the program's long options without dashes, and whether each takes a value.
 */
export function goStyleArgs(
  argv: readonly string[],
  longs: ReadonlyMap<string, boolean>,
): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--?([a-z][a-z-]+)(?:=(.*))?$/s.exec(arg);
    const takesValue = m ? longs.get(m[1]!) : undefined;
    if (!m || takesValue === undefined) {
      out.push(arg);
      if (arg === '--' || !arg.startsWith('-')) return out.concat(argv.slice(i + 1));
      continue;
    }
    const [, name, value] = m;
    if (takesValue) {
      out.push(value === undefined ? `--${name}` : `--${name}=${value}`);
      if (value === undefined && i + 1 < argv.length) out.push(argv[++i]!);
    } else if (value === undefined || value === 'true') {
      out.push(`--${name}`);
    } else if (value !== 'false') {
      out.push(arg); // commander reports it
    }
  }
  return out;
}

interface RawOptions {
  name: string;
  participate?: true;
  forceElection?: true;
  address?: string;
  masterCmd?: string;
  slaveCmd?: string;
  errorCmd?: string;
  uri?: string;
  doozerUri?: string;
  doozerBootUri?: string;
  etcdUri?: string;
  postgresUri?: string;
  passStorePassword?: true;
  run?: true;
  observe?: true;
  passDoozerSecret?: true;
  leaseMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  verbose?: true;
}

/** Parses a URI, turning a {@link DoozerUriError} into a usage error. */
function parseUri(text: string, what: string): DoozerUri {
  try {
    return parseDoozerUri(text);
  } catch (e) {
    if (e instanceof DoozerUriError)
      throw new UsageError(`bad ${what}: ${redactSecrets(e.message)}`);
    throw e;
  }
}

/** An environment variable's value, `undefined` when unset or empty. */
function fromEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/**
 * Parses and validates the command line (without `node` and the script).
 *
 * @param argv the arguments, e.g. `process.argv.slice(2)`.
 * @param env where `DOOZER_URI` and `DOOZER_BOOT_URI` are read.
 * @returns the options, or `null` when `--help` was printed (exit 0).
 * @throws UsageError for anything wrong with the command line: unknown
 *   flags, a missing or malformed URI, a bad name or address, timings the
 *   engine refuses, `--run` without a command. Its message never holds a
 *   URI's `sk=` secret.
 */
export function parseCliArgs(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  io: ParseIo,
): CliOptions | null {
  const program = buildProgram(io);
  const longs = new Map<string, boolean>();
  for (const opt of program.options) {
    if (opt.long) longs.set(opt.long.replace(/^--/, ''), opt.required || opt.optional);
  }
  try {
    program.parse(goStyleArgs(argv, longs), { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help') return null;
      throw new UsageError(redactSecrets(e.message.replace(/^error: /, '')));
    }
    throw e;
  }
  const raw = program.opts<RawOptions>();
  const general = backendFromGeneralUri(raw, env);
  const o: RawOptions = general ? { ...raw, [general.flag]: general.text } : raw;
  const operands = program.args;

  let run: CliOptions['run'];
  if (o.run) {
    const [command, ...args] = operands;
    if (command === undefined || command === '') {
      throw new UsageError('--run needs a command: --run -- COMMAND [ARGS...]');
    }
    if (!o.participate) {
      throw new UsageError('--run needs --participate: a passive process never becomes master');
    }
    run = { command, args };
  } else if (operands.length > 0) {
    throw new UsageError(
      `unexpected argument ${JSON.stringify(redactSecrets(operands[0] ?? ''))} (to supervise a command: --run -- COMMAND [ARGS...])`,
    );
  }

  const store = storeFromFlags(o);
  let doozerUri: DoozerUri | undefined;
  let bootText: string | undefined;
  if (store === undefined) {
    const uriText = o.doozerUri ?? fromEnv(env, 'DOOZER_URI');
    if (uriText === undefined) {
      throw new UsageError(
        'no Doozer URI: pass --doozer-uri or set DOOZER_URI (or choose --etcd-uri or --postgres-uri)',
      );
    }
    bootText = o.doozerBootUri ?? fromEnv(env, 'DOOZER_BOOT_URI');
    doozerUri = parseUri(uriText, 'Doozer URI');
    if (bootText !== undefined) parseUri(bootText, 'Doozer boot URI');
  }

  let timing: CliTiming;
  let name: string;
  let address: string;
  try {
    name = validateElectionName(o.name);
    address = validateAddress(o.address ?? `[::1]:${io.pid}`);
    const resolved = resolveElectionOptions({
      leaseMs: o.leaseMs,
      renewDeadlineMs: o.renewDeadlineMs,
      retryPeriodMs: o.retryPeriodMs,
    });
    timing = {
      leaseMs: resolved.leaseMs,
      renewDeadlineMs: resolved.renewDeadlineMs,
      retryPeriodMs: resolved.retryPeriodMs,
    };
  } catch (e) {
    if (e instanceof ElectionConfigError) throw usageFromConfigError(e);
    throw e;
  }

  return {
    name,
    participate: o.participate === true,
    forceElection: o.forceElection === true,
    address,
    masterCmd: o.masterCmd,
    slaveCmd: o.slaveCmd,
    errorCmd: o.errorCmd,
    doozerUri,
    doozerBootUri: bootText,
    store,
    passStorePassword: o.passStorePassword === true,
    run,
    observe: o.observe === true,
    passDoozerSecret: o.passDoozerSecret === true,
    verbose: o.verbose === true,
    timing,
    killGraceMs: killGraceMs(timing.leaseMs, timing.renewDeadlineMs),
  };
}

/**
 * Turns the engine's {@link ElectionConfigError} into a {@link UsageError}
 * naming the flag (`--renew-deadline-ms: ...` rather than `renewDeadlineMs: ...`).
 */
export function usageFromConfigError(e: ElectionConfigError): UsageError {
  const flag = TIMING_FLAGS[e.option] ?? `--${e.option}`;
  const message = e.message.startsWith(`${e.option}: `)
    ? e.message.slice(e.option.length + 2)
    : e.message;
  return new UsageError(`${flag}: ${redactSecrets(message)}`);
}

/** The short usage text printed with a usage error. */
export function usageText(): string {
  return (
    `Usage: ${PROGRAM} [options] [--run -- command [args...]]\n` +
    `Run '${PROGRAM} --help' for the options.\n`
  );
}
