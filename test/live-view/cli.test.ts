/**
 * The `doozer-dev-server` bin (dist/lib/bin/doozer-dev-server.js, what the
 * package's `bin` runs) with `--http`: the server's CLI is unchanged (its own
 * suite, test/server/cli.test.ts, covers its flags), plus the live view.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { DoozerServer } from '../../lib/testing/index.js';
import { waitFor } from '../support/wait.js';
import { fetchText } from './helpers.js';

const BIN = fileURLToPath(new URL('../../dist/lib/bin/doozer-dev-server.js', import.meta.url));
const LIVE = /^doozer-dev-server: live view on (http:\/\/\S+)$/m;

function run(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, DOOZER_RWSECRET: '', DOOZER_ROSECRET: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
  const exit = new Promise<number | null>((resolve) =>
    child.once('close', (code) => resolve(code)),
  );
  onTestFinished(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exit;
  });
  /** The live view's URL once the listening line is out (it comes after the live view's). */
  const started = async (): Promise<string> => {
    let code: number | null | undefined;
    void exit.then((c) => (code = c));
    await waitFor(() => out.stdout.includes('\n') || code !== undefined, 'the listening line', {
      timeoutMs: 30_000,
    });
    const m = LIVE.exec(out.stderr);
    if (!m) throw new Error(`no live view line: ${JSON.stringify(out)}`);
    return m[1]!;
  };
  return { child, out, exit, started };
}

describe('doozer-dev-server --http', () => {
  it('serves the live view of its store, says where on stderr, keeps stdout to one line, exits 0 on SIGTERM', async () => {
    const r = run(['--listen', '127.0.0.1:0', '--http', '127.0.0.1:0']);
    const url = await r.started();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(r.out.stdout).toMatch(
      /^doozer-dev-server listening on 127\.0\.0\.1:\d+ uri=doozer:\?ca=\S+\n$/,
    );
    expect(r.out.stderr).toBe(`doozer-dev-server: live view on ${url}\n`);
    expect((await fetchText(url)).status).toBe(200);
    const state = JSON.parse((await fetchText(`${url}state`)).body) as {
      tree: { files: { path: string }[] };
    };
    expect(state.tree.files.map((f) => f.path)).toContain('/ctl/name');
    r.child.kill('SIGTERM');
    expect(await r.exit).toBe(0);
  });

  it('reads a store with secrets, and never prints them', async () => {
    const r = run(['--listen', '127.0.0.1:0', '--http', '127.0.0.1:0'], {
      DOOZER_RWSECRET: 'rw-s3cret',
      DOOZER_ROSECRET: 'ro-s3cret',
    });
    const url = await r.started();
    const state = JSON.parse((await fetchText(`${url}state`)).body) as {
      tree: { files: unknown[] };
    };
    expect(state.tree.files.length).toBeGreaterThan(0);
    expect(r.out.stdout + r.out.stderr).not.toMatch(/s3cret/);
  });

  it('is off without --http', async () => {
    const r = run(['--listen', '127.0.0.1:0']);
    await waitFor(() => r.out.stdout.includes('\n'), 'the listening line', { timeoutMs: 30_000 });
    r.child.kill('SIGINT');
    expect(await r.exit).toBe(0);
    expect(r.out.stderr).toBe('');
  });

  it('warns on a wildcard --http', async () => {
    const r = run(['--listen', '127.0.0.1:0', '--http', '0.0.0.0:0']);
    const url = await r.started();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(r.out.stderr).toMatch(
      /^doozer-dev-server: live view: listening on the wildcard address 0\.0\.0\.0: .*bind 127\.0\.0\.1/m,
    );
  });

  it('exits 2 with the usage on a bad --http, 1 when its address is taken', async () => {
    const bad = run(['--http', 'nope']);
    expect(await bad.exit).toBe(2);
    expect(bad.out.stderr).toMatch(/--http.*expected HOST:PORT[\s\S]*Usage: doozer-dev-server/);

    const taken = await DoozerServer.start();
    onTestFinished(() => taken.close());
    const r = run(['--listen', '127.0.0.1:0', '--http', `127.0.0.1:${taken.port}`]);
    expect(await r.exit).toBe(1);
    expect(r.out.stderr).toMatch(/cannot start the live view on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    expect(r.out.stdout).toBe('');
  });
});
