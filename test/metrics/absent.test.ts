/**
 * `@opentelemetry/api` really absent: the package's CommonJS build runs in a
 * child process where resolving that module fails (a preload makes Node's
 * resolver throw MODULE_NOT_FOUND for it, as when it is not installed). The
 * default loader's `require` is tried once, fails, and every call resolves
 * with its no-op; the election runs on the embedded server meanwhile.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../dist/cjs/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'otel-absent-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PRELOAD = `
const Module = require('node:module');
const resolve = Module._resolveFilename;
globalThis.otelAttempts = 0;
Module._resolveFilename = function (request, ...rest) {
  if (request === '@opentelemetry/api' || request.startsWith('@opentelemetry/api/')) {
    globalThis.otelAttempts++;
    const err = new Error("Cannot find module '" + request + "'");
    err.code = 'MODULE_NOT_FOUND';
    throw err;
  }
  return resolve.call(this, request, ...rest);
};
`;

const SCRIPT = `
const root = ${JSON.stringify(ROOT)};
const lib = require(root + 'index.js');
const { DoozerServer, ManualClock, MemoryElectionStore } = require(root + 'testing/index.js');
const { DoozerClient } = require(root + 'doozer/index.js');
(async () => {
  const server = await DoozerServer.start({ heartbeatMs: 0 });
  const client = await DoozerClient.connect(server.uri);
  const clock = new ManualClock();
  const receiver = { becomeMaster() {}, becomeSlave() {} };
  const wrapped = await lib.instrumentReceiver(receiver, { name: 'jobs' });
  const election = await lib.MasterElectionClient.create(client, 'jobs', '10.0.0.1:80', true, wrapped, {
    leaseMs: 1000, renewDeadlineMs: 700, retryPeriodMs: 200, electionJitterMs: 0, clock,
  });
  const d1 = await lib.instrumentElection(election);
  const d2 = await lib.instrumentElection(election);
  const store = new MemoryElectionStore();
  const sameStore = (await lib.instrumentStore(store)) === store;
  d1();
  clock.advance(1000);
  while (!election.isMaster()) { clock.advance(0); await new Promise((r) => setTimeout(r, 2)); }
  await election.close();
  await client.close();
  await server.close();
  console.log(JSON.stringify({
    attempts: globalThis.otelAttempts,
    sameDetach: d1 === d2,
    sameReceiver: wrapped === receiver,
    sameStore,
    master: true,
  }));
})().catch((err) => { console.error(err); process.exit(1); });
`;

function run(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  writeFileSync(join(dir, 'preload.cjs'), PRELOAD);
  writeFileSync(join(dir, 'main.cjs'), SCRIPT);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-r', join(dir, 'preload.cjs'), join(dir, 'main.cjs')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('without @opentelemetry/api installed (CommonJS build)', () => {
  it('tries the import once, then every call is a no-op and the election runs', async () => {
    const { code, stdout, stderr } = await run();
    expect(code, stderr).toBe(0);
    expect(stderr).toBe('');
    expect(JSON.parse(stdout)).toEqual({
      attempts: 1,
      sameDetach: true,
      sameReceiver: true,
      sameStore: true,
      master: true,
    });
  });
});
