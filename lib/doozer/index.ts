/**
 * `nestjs-master-election/doozer`: a complete Doozer protocol client.
 *
 * ```ts
 * import { DoozerClient } from 'nestjs-master-election/doozer';
 * const client = await DoozerClient.connect('doozer:?ca=127.0.0.1:8046');
 * const rev = await client.set('/app/config', 0, 'hello');
 * ```
 *
 * See docs/doozer-client.md.
 */
export * from './errors.js';
export * from './types.js';
export { DoozerClient, WATCH_PROTOCOL_RETRIES } from './client.js';
export {
  DoozerUri,
  parseDoozerUri,
  formatAddress,
  parseAddress,
  type DoozerAddress,
} from './uri.js';
export { DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
export { DEFAULT_MAX_FRAME_BYTES } from '../wire/index.js';
