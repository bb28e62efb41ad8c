/** `nestjs-master-election/doozer`: a complete Doozer protocol client. */
export * from './errors.js';
