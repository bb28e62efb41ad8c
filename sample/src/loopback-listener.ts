import { createServer, type AddressInfo, type Server } from 'node:net';
import { LOOPBACK } from './config.js';

/** A TCP socket bound to 127.0.0.1 and listening, waiting to be handed to the HTTP server. */
export interface LoopbackListener {
  /** The bound port (the one the OS picked when asked for port 0). */
  readonly port: number;
  /**
   * The listening socket. Pass it to `app.listen()`: Node's
   * `server.listen(handle)` takes over an already listening socket.
   */
  readonly handle: Server;
}

/**
 * Binds `127.0.0.1:<port>` before the Nest application exists.
 *
 * The election advertises `127.0.0.1:<http port>`, and that address is part
 * of the module's options, read when the application is created, which is
 * before `app.listen()`. With `PORT=0` the port is only known once bound,
 * so the sample binds first and lets Nest's HTTP server adopt the socket.
 * (Asking the OS for a free port and binding it again later would race with
 * other processes doing the same.)
 */
export function listenOnLoopback(port: number): Promise<LoopbackListener> {
  const handle = createServer();
  return new Promise((resolve, reject) => {
    handle.once('error', reject);
    handle.listen({ port, host: LOOPBACK, exclusive: true }, () => {
      handle.off('error', reject);
      resolve({ port: (handle.address() as AddressInfo).port, handle });
    });
  });
}
