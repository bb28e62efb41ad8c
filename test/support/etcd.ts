/**
 * Starting a real etcd for a test file: `etcd` (on PATH, or `ETCD_BIN`) on
 * free loopback client and peer ports, with a fresh data dir under the
 * system temp dir, stopped (and the dir removed) by `stop()`.
 *
 * Outside CI, a missing binary skips the suite with one line saying how to
 * install it; under `CI=true` it fails the run (see binaries.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary, requireBinary } from './binaries.js';

const HINT = 'apt-get install etcd-server etcd-client (or set ETCD_BIN / ETCDCTL_BIN)';

/** Path of `etcd`, or undefined (suite skipped) outside CI. */
export const ETCD_BIN = requireBinary('etcd', findBinary(['etcd'], process.env.ETCD_BIN), HINT);
/** Path of `etcdctl`, or undefined (suite skipped) outside CI. */
export const ETCDCTL_BIN = requireBinary(
  'etcdctl',
  findBinary(['etcdctl'], process.env.ETCDCTL_BIN),
  HINT,
);

/** A free TCP port on 127.0.0.1 (closed again; etcd binds it next). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Whether the member on client port `port` answers `/health` with health true (it has a leader). */
export function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get(
      { host: '127.0.0.1', port, path: '/health', agent: false, timeout: 2000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(res.statusCode === 200 && body.includes('true')));
        res.on('error', () => resolve(false));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** One etcd member, alone in its cluster. */
export class EtcdServer {
  private output = '';
  private exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly clientPort: number,
    readonly dataDir: string,
  ) {
    const keep = (c: Buffer): void => {
      this.output = (this.output + c.toString('utf8')).slice(-8000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** Starts etcd and waits (up to 30 s) until it reports healthy. */
  static async start(): Promise<EtcdServer> {
    if (!ETCD_BIN) throw new Error('etcd is not installed');
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const [clientPort, peerPort] = [await freePort(), await freePort()];
      const dataDir = mkdtempSync(join(tmpdir(), 'nme-etcd-'));
      const client = `http://127.0.0.1:${clientPort}`;
      const peer = `http://127.0.0.1:${peerPort}`;
      const child = spawn(
        ETCD_BIN,
        [
          '--name=test',
          `--data-dir=${dataDir}`,
          `--listen-client-urls=${client}`,
          `--advertise-client-urls=${client}`,
          `--listen-peer-urls=${peer}`,
          `--initial-advertise-peer-urls=${peer}`,
          `--initial-cluster=test=${peer}`,
          '--initial-cluster-state=new',
          '--logger=zap',
          '--log-level=warn',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const server = new EtcdServer(child, clientPort, dataDir);
      try {
        await server.waitHealthy(30_000);
        return server;
      } catch (err) {
        lastError = err;
        await server.stop();
      }
    }
    throw lastError;
  }

  /** `127.0.0.1:<port>`. */
  get endpoint(): string {
    return `127.0.0.1:${this.clientPort}`;
  }

  /** `etcd://127.0.0.1:<port>` plus `rest` (a `/prefix`). */
  uri(rest = ''): string {
    return `etcd://${this.endpoint}${rest}`;
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** SIGSTOP: etcd stops answering (connections stay open). */
  pause(): void {
    this.child.kill('SIGSTOP');
  }

  resume(): void {
    this.child.kill('SIGCONT');
  }

  /** Stops etcd (SIGTERM, SIGKILL after 10 s) and removes its data dir. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGCONT');
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  private async waitHealthy(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) break;
      if (await healthy(this.clientPort)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`etcd did not become healthy on ${this.endpoint}: ${this.output.slice(-2000)}`);
  }
}
