/**
 * Runs the conformance table (rows.ts) through DoozerClient against
 * DOOZER_CONFORMANCE_URI when it is set, otherwise against embedded servers.
 *
 *   npx vitest run test/conformance
 *   DOOZER_CONFORMANCE_URI='doozer:?ca=127.0.0.1:8046' npx vitest run test/conformance
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, it, onTestFinished } from 'vitest';
import type { DoozerClient } from '../../lib/doozer/index.js';
import { SECTIONS, type RowContext } from './rows.js';
import { connectClient, connectRawTo, Target } from './target.js';

const target = new Target();
/** Every row writes below its own directory of this run's prefix. */
const prefix = `/conformance/${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
let cleaner: DoozerClient | undefined;

afterAll(async () => {
  // Against a shared server, leave nothing behind (best effort).
  if (target.external) {
    cleaner ??= await connectClient(target.external, target.external.secrets.rw);
    const rev = await cleaner.rev();
    for await (const f of cleaner.walk(`${prefix}/**`, rev)) await cleaner.del(f.path, -1);
    await cleaner.close();
  }
  await target.close();
});

let rowNumber = 0;
describe(`Doozer protocol conformance against ${target.description}`, () => {
  for (const [section, rows] of Object.entries(SECTIONS)) {
    describe(section, () => {
      for (const row of rows) {
        const dir = `${prefix}/r${++rowNumber}`;
        const skip = target.skipReason(row.needs);
        const title = skip ? `${row.doc} [skipped: ${skip}]` : row.doc;
        // Rows that write past the history bound may write thousands of revs.
        const timeout = row.needs?.history === undefined ? undefined : 600_000;
        it.skipIf(skip !== undefined)(title, { timeout }, async (test) => {
          const server = await target.server(row.needs);
          const closeLater = <T extends { close(): Promise<unknown> }>(x: T): T => {
            onTestFinished(async () => {
              await x.close();
            });
            return x;
          };
          const client = closeLater(await connectClient(server, server.secrets.rw));
          const ctx: RowContext = {
            server,
            client,
            skip: (reason) => test.skip(reason),
            p: (...names) => [dir, ...names].join('/'),
            raw: async (secret) =>
              closeLater(
                await connectRawTo(
                  client,
                  server,
                  secret === null ? undefined : (secret ?? server.secrets.rw),
                ),
              ),
            connect: async (secret) =>
              closeLater(
                await connectClient(
                  server,
                  secret === null ? undefined : (secret ?? server.secrets.rw),
                ),
              ),
          };
          await row.run(ctx);
        });
      }
    });
  }
});
