/** The embedded Doozer-compatible server (see docs/embedded-server.md). */
export {
  DoozerServer,
  EMBEDDED_SERVER_VERSION,
  type DoozerServerOptions,
  type DoozerServerStats,
} from './server.js';
