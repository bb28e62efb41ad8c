/** `nestjs-master-election/testing`: the embedded Doozer server and test helpers. */
import { DoozerServer, type DoozerServerOptions } from '../server/index.js';

export {
  DoozerServer,
  EMBEDDED_SERVER_VERSION,
  type DoozerServerOptions,
  type DoozerServerStats,
} from '../server/index.js';
export { ManualClock } from './manual-clock.js';
export {
  RawDoozerConnection,
  encodeRequest,
  plainResponse,
  type PlainResponse,
  type RawRequest,
} from './raw-connection.js';

/**
 * Starts an embedded server, runs `fn` with it and closes it afterwards,
 * whether `fn` succeeded or threw.
 */
export async function withDoozerServer<T>(
  fn: (server: DoozerServer) => Promise<T>,
  options: DoozerServerOptions = {},
): Promise<T> {
  const server = await DoozerServer.start(options);
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}
export {
  MemoryElectionStore,
  MemoryStoreError,
  type MemoryStoreOptions,
  type MemoryStoreStats,
} from './memory-store.js';
