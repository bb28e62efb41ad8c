/**
 * A loopback TCP proxy for fault tests: it puts one client's connection to a
 * server under the test's control. `block()` cuts the client off and refuses
 * its reconnections; `hold()` stops forwarding what the client sends (bytes
 * are kept, in order) until `release()`.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private blocked = false;
  private held: { upstream: Socket; chunks: Buffer[] }[] | null = null;
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();

  private constructor(
    private readonly server: Server,
    private readonly targetPort: number,
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  /** Starts a proxy on 127.0.0.1 (port 0) to 127.0.0.1:`targetPort`. */
  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return new TcpProxy(server, targetPort);
  }

  /** The proxy's port on 127.0.0.1. */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** `doozer:?ca=` URI of the proxy. */
  get uri(): string {
    return `doozer:?ca=127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Drops every proxied connection and refuses new ones (accepted, then closed at once). */
  block(): void {
    this.blocked = true;
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
  }

  /** Accepts and forwards connections again. */
  unblock(): void {
    this.blocked = false;
  }

  /** From now on, keeps what clients send instead of forwarding it. */
  hold(): void {
    this.held ??= [];
  }

  /** Forwards everything held, in order, and stops holding. */
  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const { upstream, chunks } of held) {
      for (const chunk of chunks) if (!upstream.destroyed) upstream.write(chunk);
    }
  }

  async close(): Promise<void> {
    this.block();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    client.on('error', () => {});
    if (this.blocked) {
      client.destroy();
      return;
    }
    const upstream = connect({ host: '127.0.0.1', port: this.targetPort });
    upstream.on('error', () => {});
    const pair = { client, upstream };
    this.pairs.add(pair);
    const end = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('data', (chunk: Buffer) => {
      if (this.held === null) {
        upstream.write(chunk);
        return;
      }
      let entry = this.held.find((h) => h.upstream === upstream);
      if (!entry) {
        entry = { upstream, chunks: [] };
        this.held.push(entry);
      }
      entry.chunks.push(chunk);
    });
  }
}
