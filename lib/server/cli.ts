/**
 * The CLI of `doozer-dev-server` (the bin is lib/bin/doozer-dev-server.ts,
 * which adds the live view): runs the embedded Doozer server as a process.
 *
 *     doozer-dev-server [--listen 127.0.0.1:8046] [--advertise-host HOST] [--history N]
 *                       [--cluster-name local] [--heartbeat-ms N] [--max-frame-bytes N]
 *                       [--max-path-bytes N] [--max-path-depth N] [--max-write-buffer-bytes N]
 *                       [--max-total-write-buffer-bytes N] [--max-waiting N]
 *
 * Reads DOOZER_RWSECRET / DOOZER_ROSECRET like doozerd. Prints exactly one
 * line on stdout once it listens (other tools parse it; keep it stable):
 *
 *     doozer-dev-server listening on 127.0.0.1:8046 uri=doozer:?ca=127.0.0.1:8046
 *
 * Warnings go to stderr. Exits 0 on SIGINT/SIGTERM (also one received while
 * starting), 128 + the signal number at once on a second signal, 2 on bad
 * flags, 1 when it cannot listen.
 */
import { constants } from 'node:os';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_MAX_PATH_BYTES, DEFAULT_MAX_PATH_DEPTH } from './request-limits.js';
import { DoozerServer } from './server.js';

/** What a signal closes once the server listens; a signal before that has nothing to close. */
let running: { close(): Promise<void> } | undefined;
let signalled = false;

// Installed before anything else, so a signal during startup is handled too.
function onSignal(signal: NodeJS.Signals): void {
  if (signalled) process.exit(128 + constants.signals[signal]); // a second signal: do not wait
  signalled = true;
  if (!running) process.exit(0);
  void running.close().then(() => process.exit(0));
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

/** Exit status for bad flags. */
const USAGE_EXIT = 2;

/** Splits `HOST:PORT` (`[v6]:PORT` for IPv6; `:PORT` means 127.0.0.1). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new InvalidArgumentError('expected HOST:PORT, e.g. 127.0.0.1:8046 or [::1]:0');
  }
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

function nonNegativeInt(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError('expected a non-negative integer');
  }
  return Number(value);
}

function positiveInt(value: string): number {
  const n = nonNegativeInt(value);
  if (n === 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/**
 * What a bin composing this CLI adds (lib/bin/doozer-dev-server.ts: the live
 * view's `--http`): flags, and what to start once the server listens, before
 * the listening line. `start` resolves with what a signal then closes.
 */
export interface CliExtension {
  configure(program: Command): void;
  start(
    server: DoozerServer,
    options: Record<string, unknown>,
  ): Promise<{ close(): Promise<void> }>;
}

/** Runs the CLI with `argv` (without `node` and the script). Resolves once the server listens. */
export async function main(
  argv: string[],
  extension?: CliExtension,
): Promise<DoozerServer | undefined> {
  const program = new Command('doozer-dev-server')
    .description(
      'An embedded, in-memory, single-node Doozer-compatible server for development and tests.',
    )
    .addOption(
      new Option('--listen <host:port>', 'address to listen on (port 0: any free port)')
        .argParser(parseListen)
        .default(parseListen('127.0.0.1:8046'), '127.0.0.1:8046'),
    )
    .option(
      '--advertise-host <host>',
      'host put in the uri and /ctl/ns (default: the listen address; set it with a wildcard --listen)',
    )
    .option('--history <revs>', 'revs of history kept (TOO_LATE before them)', nonNegativeInt, 2000)
    .option('--cluster-name <name>', 'cluster name (/ctl/name, /ctl/ns/<name>/<node id>)', 'local')
    .option('--node-id <id>', 'node id (default: random, as doozerd)')
    .option('--heartbeat-ms <ms>', 'heartbeat period in ms, 0 turns it off', nonNegativeInt, 1000)
    .option(
      '--max-frame-bytes <n>',
      'largest request frame accepted',
      positiveInt,
      16 * 1024 * 1024,
    )
    .option(
      '--max-path-bytes <n>',
      'longest path or glob (BAD_PATH past it)',
      positiveInt,
      DEFAULT_MAX_PATH_BYTES,
    )
    .option(
      '--max-path-depth <n>',
      'most path components (BAD_PATH past it)',
      positiveInt,
      DEFAULT_MAX_PATH_DEPTH,
    )
    .option(
      '--max-write-buffer-bytes <n>',
      'most unread answer bytes one connection may have before it is closed (default: 4 x --max-frame-bytes)',
      positiveInt,
    )
    .option(
      '--max-total-write-buffer-bytes <n>',
      'most memory unread answers may hold server-wide (default: 16 x --max-frame-bytes)',
      positiveInt,
    )
    .option(
      '--max-waiting <n>',
      'most WAITs and future-rev reads waiting server-wide',
      positiveInt,
      1_000_000,
    )
    .allowExcessArguments(false)
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  extension?.configure(program);
  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      const helpOrVersion = e.code === 'commander.helpDisplayed' || e.code === 'commander.version';
      process.exit(helpOrVersion ? 0 : USAGE_EXIT);
    }
    throw e;
  }
  const o = program.opts<{
    listen: { host: string; port: number };
    advertiseHost?: string;
    history: number;
    clusterName: string;
    nodeId?: string;
    heartbeatMs: number;
    maxFrameBytes: number;
    maxPathBytes: number;
    maxPathDepth: number;
    maxWriteBufferBytes?: number;
    maxTotalWriteBufferBytes?: number;
    maxWaiting: number;
  }>();
  let server: DoozerServer;
  try {
    server = await DoozerServer.start({
      host: o.listen.host,
      advertiseHost: o.advertiseHost,
      port: o.listen.port,
      history: o.history,
      clusterName: o.clusterName,
      nodeId: o.nodeId,
      heartbeatMs: o.heartbeatMs,
      maxFrameBytes: o.maxFrameBytes,
      maxPathBytes: o.maxPathBytes,
      maxPathDepth: o.maxPathDepth,
      maxWriteBufferBytes: o.maxWriteBufferBytes,
      maxTotalWriteBufferBytes: o.maxTotalWriteBufferBytes,
      maxWaiting: o.maxWaiting,
      rwSecret: process.env.DOOZER_RWSECRET || undefined,
      roSecret: process.env.DOOZER_ROSECRET || undefined,
      logger: { warn: (m) => process.stderr.write(`doozer-dev-server: ${m}\n`) },
    });
  } catch (e) {
    if (e instanceof RangeError) {
      process.stderr.write(`doozer-dev-server: ${e.message}\n`);
      program.outputHelp({ error: true });
      process.exit(USAGE_EXIT);
    }
    process.stderr.write(
      `doozer-dev-server: cannot listen on ${o.listen.host}:${o.listen.port}: ${(e as Error).message}\n`,
    );
    process.exit(1);
  }
  running = extension ? await extension.start(server, program.opts()) : server;
  process.stdout.write(`doozer-dev-server listening on ${server.address} uri=${server.uri}\n`);
  return server;
}
