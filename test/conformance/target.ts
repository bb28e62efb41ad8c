/**
 * Where the conformance rows run: the server named by DOOZER_CONFORMANCE_URI
 * (a real doozerd, say), or embedded servers started here with whatever
 * options a row needs. See docs/embedded-server.md.
 *
 *   DOOZER_CONFORMANCE_URI       doozer:?ca=HOST:PORT of the server under test
 *   DOOZER_CONFORMANCE_RWSECRET  its DOOZER_RWSECRET, if it has one
 *   DOOZER_CONFORMANCE_ROSECRET  its DOOZER_ROSECRET, if it has one
 *   DOOZER_CONFORMANCE_HISTORY   its history length (doozerd -hist), default 2000
 */
import { DoozerClient, parseAddress, parseDoozerUri } from '../../lib/doozer/index.js';
import {
  DoozerServer,
  RawDoozerConnection,
  type DoozerServerOptions,
} from '../../lib/testing/index.js';
import { Verb } from '../../lib/wire/index.js';

/** How the server's secrets are configured (the ACCESS table of the protocol page). */
export type SecretMode = 'none' | 'rw' | 'rw+ro';

/** What a row needs from the server beyond the defaults. */
export interface Needs {
  /**
   * The history length the embedded server is started with, small so the
   * row runs fast. An external server keeps its own (DOOZER_CONFORMANCE_HISTORY):
   * rows read the length to rely on from {@link Server.history}.
   */
  history?: number;
  /** A server with this secret configuration. */
  secrets?: SecretMode;
  /** A node that was just started (only the embedded server). */
  fresh?: boolean;
  /** Only the embedded server: the reason, when the reference does something else or nothing. */
  embeddedOnly?: string;
  /** Needs a multi-node cluster: no target here has one. */
  cluster?: boolean;
}

/** What a row runs against. */
export interface Server {
  readonly uri: string;
  readonly secrets: { readonly rw?: string; readonly ro?: string };
  readonly mode: SecretMode;
  /** Revs of history the server keeps (TOO_LATE before them). */
  readonly history: number;
  /** The embedded server, when the row runs against one. */
  readonly embedded?: DoozerServer;
}

const EMBEDDED_RW = 'conformance-rw-secret';
const EMBEDDED_RO = 'conformance-ro-secret';
const DEFAULT_HISTORY = 2000;

function modeOf(rw: string | undefined, ro: string | undefined): SecretMode {
  // Only a read-only secret: the unset read-write secret is the empty one,
  // which every connection starts as if it had sent, so all are allowed.
  if (!rw) return 'none';
  return ro ? 'rw+ro' : 'rw';
}

function historyOf(value: string | undefined): number {
  if (!value) return DEFAULT_HISTORY;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new Error(`DOOZER_CONFORMANCE_HISTORY must be a positive integer, got ${value}`);
  }
  return n;
}

/** The servers of one conformance run. */
export class Target {
  readonly external: Server | undefined;
  private readonly embedded = new Map<string, Promise<DoozerServer>>();
  private readonly fresh: DoozerServer[] = [];

  constructor(env: NodeJS.ProcessEnv = process.env) {
    const uri = env.DOOZER_CONFORMANCE_URI;
    if (uri) {
      const rw = env.DOOZER_CONFORMANCE_RWSECRET || undefined;
      const ro = env.DOOZER_CONFORMANCE_ROSECRET || undefined;
      const history = historyOf(env.DOOZER_CONFORMANCE_HISTORY);
      this.external = { uri, secrets: { rw, ro }, mode: modeOf(rw, ro), history };
    }
  }

  /** A one-line description for the suite's title. */
  get description(): string {
    return this.external
      ? `${this.external.uri.replace(/sk=[^&]*/, 'sk=***')}`
      : 'the embedded server';
  }

  /** Why a row cannot run here, or `undefined` when it can. */
  skipReason(needs: Needs = {}): string | undefined {
    if (needs.cluster) return 'needs a multi-node cluster';
    const ext = this.external;
    if (!ext) return undefined;
    if (needs.embeddedOnly) return `embedded server only: ${needs.embeddedOnly}`;
    if (needs.fresh) return 'needs a freshly started node';
    if ((needs.secrets ?? ext.mode) !== ext.mode) {
      return `needs a server with secrets "${needs.secrets}", this one has "${ext.mode}"`;
    }
    return undefined;
  }

  /** The server a row with `needs` runs against. */
  async server(needs: Needs = {}): Promise<Server> {
    if (this.external) return this.external;
    const secrets = needs.secrets ?? 'none';
    const options: DoozerServerOptions = {
      history: needs.history,
      rwSecret: secrets === 'none' ? undefined : EMBEDDED_RW,
      roSecret: secrets === 'rw+ro' ? EMBEDDED_RO : undefined,
      // Heartbeats on, as a real node: rows must not assume consecutive revs.
      heartbeatMs: 1000,
    };
    let server: DoozerServer;
    if (needs.fresh) {
      server = await DoozerServer.start(options);
      this.fresh.push(server);
    } else {
      const key = JSON.stringify(options);
      let started = this.embedded.get(key);
      if (!started) {
        started = DoozerServer.start(options);
        this.embedded.set(key, started);
      }
      server = await started;
    }
    return {
      uri: server.uri,
      secrets: { rw: options.rwSecret, ro: options.roSecret },
      mode: secrets,
      history: needs.history ?? DEFAULT_HISTORY,
      embedded: server,
    };
  }

  /** Closes every embedded server. */
  async close(): Promise<void> {
    const all = [...this.fresh, ...(await Promise.all(this.embedded.values()))];
    await Promise.all(all.map((s) => s.close()));
  }
}

/** A client of `server`, after ACCESS with `secret` when one is given. */
export async function connectClient(
  server: Server,
  secret: string | undefined,
): Promise<DoozerClient> {
  const client = await DoozerClient.connect(server.uri, {
    reconnect: false,
    requestTimeoutMs: 20_000,
  });
  if (secret !== undefined) await client.access(secret);
  return client;
}

/** A raw connection to the node `client` talks to, after ACCESS with `secret` when one is given. */
export async function connectRawTo(
  client: DoozerClient,
  server: Server,
  secret: string | undefined,
): Promise<RawDoozerConnection> {
  const address = client.address ?? parseDoozerUri(server.uri).addresses[0];
  const { host, port } = typeof address === 'string' ? parseAddress(address) : address!;
  const raw = await RawDoozerConnection.connect(port, host);
  if (secret !== undefined) {
    const res = await raw.call({ verb: Verb.ACCESS, value: secret });
    if (res.err) throw new Error(`ACCESS refused: ${res.err}`);
  }
  return raw;
}
