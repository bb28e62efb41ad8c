/**
 * Preloaded into every replica by the demo (`node --import`). The demo keeps
 * the write end of a pipe on the replica's stdin and never writes to it: if
 * the demo goes away without stopping its replicas (killed with SIGKILL, or
 * crashed), the pipe closes and the replica shuts down as on SIGTERM, so no
 * replica outlives the demo.
 */
const stdin = process.stdin;
stdin.once('end', () => process.kill(process.pid, 'SIGTERM'));
stdin.once('error', () => process.kill(process.pid, 'SIGTERM'));
stdin.resume();
// The pipe alone must not keep a replica alive.
(stdin as NodeJS.ReadStream & { unref?: () => void }).unref?.();

export {};
