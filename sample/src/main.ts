/**
 * Starts one replica of the sample application:
 *
 *     DOOZER_URI="doozer:?ca=127.0.0.1:8046" PORT=3000 node dist/sample/src/main.js
 *
 * Run several with different ports: one is master and runs the leader-only
 * job. `ELECTION_URI` instead elects on any store, by its scheme
 * (`etcd://127.0.0.1:2379`, `postgres://user:password@127.0.0.1:5432/db`). See sample/src/config.ts for every variable, and
 * docs/sample-and-demo.md.
 */
import { ConsoleLogger, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MasterElectionService } from 'nestjs-master-election';
import { AppModule } from './app.module.js';
import { LOOPBACK, logLevels, validateEnv } from './config.js';
import { listenOnLoopback } from './loopback-listener.js';

async function bootstrap(logger: ConsoleLogger): Promise<void> {
  const env = validateEnv(process.env);
  logger.setLogLevels(logLevels(env.LOG_LEVEL));
  const listener = await listenOnLoopback(env.PORT);
  const app = await NestFactory.create(AppModule.forRoot({ httpPort: listener.port }), {
    logger,
    abortOnError: false, // throw instead of process.abort(), to exit with a clear message
  });
  // SIGTERM/SIGINT run the shutdown hooks: a master resigns (beforeApplicationShutdown)
  // so another replica takes over at once instead of after a lease.
  app.enableShutdownHooks();
  // Nest's HTTP server adopts the socket bound above (see listenOnLoopback).
  await app.listen(listener.handle as unknown as number);

  const election = app.get(MasterElectionService);
  // One machine-readable line (key=value) for scripts such as the demo.
  new Logger('Main').log(
    `ready port=${listener.port} url=http://${LOOPBACK}:${listener.port} election=${election.name} address=${election.address} pid=${process.pid}`,
  );
}

const logger = new ConsoleLogger({ json: process.env.LOG_FORMAT === 'json' });
bootstrap(logger).catch((err: unknown) => {
  logger.error(err instanceof Error ? err.message : String(err), undefined, 'Main');
  process.exit(1);
});
