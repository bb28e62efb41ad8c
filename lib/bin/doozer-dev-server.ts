#!/usr/bin/env node
/**
 * The `doozer-dev-server` bin: the embedded server's CLI (lib/server/cli.ts,
 * its flags, its one stdout line, its exit codes) plus the live view:
 *
 *     doozer-dev-server [server flags] [--http 127.0.0.1:PORT]
 *
 * `--http` (off by default) serves the live view of the server's store
 * (lib/live-view) on that address. It is a Doozer client of the server like
 * any other, so neither side knows the other: this file composes them.
 * Once both listen, one line goes to stderr before the listening line on
 * stdout (which stays the only stdout line):
 *
 *     doozer-dev-server: live view on http://127.0.0.1:8047/
 */
import { Option, type Command } from 'commander';
import { formatAddress } from '../doozer/index.js';
import { LiveView } from '../live-view/index.js';
import { main, parseListen } from '../server/cli.js';
import type { DoozerServer } from '../server/index.js';

const warn = (m: string): void => void process.stderr.write(`doozer-dev-server: ${m}\n`);

/** The URI the live view reads the server with: its bound address (loopback for a wildcard), and a secret. */
function storeUri(server: DoozerServer): string {
  const host = server.host === '0.0.0.0' ? '127.0.0.1' : server.host === '::' ? '::1' : server.host;
  // The read-only secret is enough to read; with only a read-write one, that one.
  const secret = process.env.DOOZER_ROSECRET || process.env.DOOZER_RWSECRET;
  const sk = secret ? `&sk=${encodeURIComponent(secret)}` : '';
  return `doozer:?ca=${formatAddress({ host, port: server.port })}${sk}`;
}

await main(process.argv.slice(2), {
  configure(program: Command) {
    program.addOption(
      new Option(
        '--http <host:port>',
        'serve the live view of the store on this address (off by default; loopback unless told otherwise)',
      ).argParser(parseListen),
    );
  },
  async start(server, options) {
    const http = options.http as { host: string; port: number } | undefined;
    if (!http) return server;
    let view: LiveView;
    try {
      view = await LiveView.start({
        uri: storeUri(server),
        host: http.host,
        port: http.port,
        logger: { warn },
      });
    } catch (e) {
      warn(`cannot start the live view on ${formatAddress(http)}: ${(e as Error).message}`);
      await server.close();
      process.exit(1);
    }
    warn(`live view on ${view.url}`);
    return {
      close: async () => {
        await view.close();
        await server.close();
      },
    };
  },
});
