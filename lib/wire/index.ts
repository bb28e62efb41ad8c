/**
 * The wire schema shared by the client and the embedded server: the
 * generated protobuf messages (from `doozer.proto`), framing and path rules.
 * Nothing here knows about either side.
 */
export {
  RequestSchema,
  ResponseSchema,
  Request_Verb as Verb,
  Response_Err as Err,
  type Request,
  type Response,
} from './gen/doozer_pb.js';
export * from './frame.js';
export * from './path.js';

/** WAIT/WALK response flag: the file was set. */
export const FLAG_SET = 4;
/** WAIT/WALK response flag: the file was deleted. */
export const FLAG_DEL = 8;
/** Default TCP port of a Doozer server. */
export const DEFAULT_PORT = 8046;
