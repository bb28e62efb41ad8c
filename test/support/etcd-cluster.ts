/**
 * A three-member etcd cluster on loopback for a test file: `etcd` (see
 * etcd.ts for finding it) started three times on free 127.0.0.1 client and
 * peer ports, joined by `--initial-cluster`, each with a fresh data dir under
 * the system temp dir. `stop()` stops every member still running and removes
 * the data dirs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ETCD_BIN, freePort, healthy } from './etcd.js';

/** One member of an {@link EtcdCluster}. */
export class EtcdMember {
  private output = '';
  readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly clientPort: number,
    readonly dataDir: string,
  ) {
    const keep = (c: Buffer): void => {
      this.output = (this.output + c.toString('utf8')).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** `127.0.0.1:<client port>`. */
  get endpoint(): string {
    return `127.0.0.1:${this.clientPort}`;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last lines etcd printed (for failure messages). */
  get log(): string {
    return this.output;
  }

  /** Sends `signal` (SIGCONT first, so a paused member can act on it) and waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.running) {
      this.child.kill('SIGCONT');
      this.child.kill(signal);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
  }
}

/** Three etcd members on loopback, one cluster. */
export class EtcdCluster {
  private constructor(readonly members: readonly EtcdMember[]) {}

  /** Starts the members and waits (up to 60 s) until each reports healthy (the cluster has a leader). */
  static async start(size = 3): Promise<EtcdCluster> {
    if (!ETCD_BIN) throw new Error('etcd is not installed');
    let lastError: unknown;
    // Free ports are found, closed, then bound by etcd: another process may
    // take one in between, so a failed start is tried again on new ports.
    for (let attempt = 0; attempt < 3; attempt++) {
      const token = `nme-${process.pid}-${Date.now()}-${attempt}`;
      const specs: { name: string; client: number; peer: number; dir: string }[] = [];
      for (let i = 0; i < size; i++) {
        specs.push({
          name: `m${i}`,
          client: await freePort(),
          peer: await freePort(),
          dir: mkdtempSync(join(tmpdir(), `nme-etcd-m${i}-`)),
        });
      }
      const initial = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peer}`).join(',');
      const members = specs.map((s) => {
        const client = `http://127.0.0.1:${s.client}`;
        const peer = `http://127.0.0.1:${s.peer}`;
        const child = spawn(
          ETCD_BIN!,
          [
            `--name=${s.name}`,
            `--data-dir=${s.dir}`,
            `--listen-client-urls=${client}`,
            `--advertise-client-urls=${client}`,
            `--listen-peer-urls=${peer}`,
            `--initial-advertise-peer-urls=${peer}`,
            `--initial-cluster=${initial}`,
            `--initial-cluster-token=${token}`,
            '--initial-cluster-state=new',
            '--logger=zap',
            '--log-level=warn',
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        return new EtcdMember(s.name, child, s.client, s.dir);
      });
      const cluster = new EtcdCluster(members);
      try {
        await cluster.waitHealthy(members, 60_000);
        return cluster;
      } catch (err) {
        lastError = err;
        await cluster.stop();
      }
    }
    throw lastError;
  }

  /** Every member's `127.0.0.1:<client port>`, in member order. */
  get endpoints(): string[] {
    return this.members.map((m) => m.endpoint);
  }

  /** `etcd://<all endpoints>` plus `rest` (a `/prefix`). */
  uri(rest = ''): string {
    return `etcd://${this.endpoints.join(',')}${rest}`;
  }

  /** The member with client endpoint `endpoint`. */
  member(endpoint: string): EtcdMember {
    const m = this.members.find((x) => x.endpoint === endpoint);
    if (!m) throw new Error(`no member ${endpoint}`);
    return m;
  }

  /** Waits until every member in `members` (default: those running) reports healthy. */
  async waitHealthy(
    members: readonly EtcdMember[] = this.members.filter((m) => m.running),
    ms = 60_000,
  ): Promise<void> {
    const deadline = Date.now() + ms;
    const pending = new Set(members);
    while (pending.size > 0 && Date.now() < deadline) {
      for (const m of [...pending]) {
        if (!m.running) throw new Error(`etcd ${m.name} exited: ${m.log.slice(-2000)}`);
        if (await healthy(m.clientPort)) pending.delete(m);
      }
      if (pending.size > 0) await new Promise((r) => setTimeout(r, 100));
    }
    if (pending.size > 0) {
      const [m] = pending;
      throw new Error(`etcd ${m!.name} did not become healthy: ${m!.log.slice(-2000)}`);
    }
  }

  /** Stops every member still running and removes all data dirs. */
  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
    for (const m of this.members) rmSync(m.dataDir, { recursive: true, force: true });
  }
}
