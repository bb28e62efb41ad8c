/**
 * What `elect-run-command` hands on and prints (issue 17): the `--run` child
 * and the hooks get `DOOZER_URI` without the `sk=` secret unless
 * `--pass-doozer-secret`; no log line holds the secret; a closed stdout
 * (`--help | head -1`) is no crash.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DoozerServer } from '../../lib/testing/index.js';
import { CLI, TIMING, TIMING_FLAGS, Workspace, cleanEnv, type Exit } from './harness.js';

const SECRET = 'the-rw-secret';

let server: DoozerServer;
let ws: Workspace;

beforeEach(async () => {
  server = await DoozerServer.start({
    host: '127.0.0.1',
    port: 0,
    heartbeatMs: 0,
    rwSecret: SECRET,
  });
  ws = new Workspace(cleanEnv({ DOOZER_URI: `${server.uri}&sk=${SECRET}` }));
});

afterEach(async () => {
  try {
    await ws.cleanup();
  } finally {
    await server.close();
  }
});

/** The environment of a running process, from /proc/<pid>/environ. */
function environOf(pid: number): Map<string, string> {
  const env = new Map<string, string>();
  for (const entry of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return env;
}

/** `env` output of a hook, as a map. */
function envFile(name: string): Map<string, string> {
  return new Map(
    ws.lines(name).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

const monotonicNow = (): number => Number(process.hrtime.bigint()) / 1e6;

/** A participant that dumps its master hook's environment and runs a sleeper. */
function participant(tag: string, extra: string[] = []): string[] {
  return [
    '--participate',
    '--verbose',
    ...TIMING_FLAGS,
    '--master-cmd',
    `env > ${ws.path(`${tag}.hook-env`)}`,
    ...extra,
    '--run',
    '--',
    'sh',
    '-c',
    'echo $$ > "$0"; exec sleep 600',
    ws.path(`${tag}.pid`),
  ];
}

describe('elect-run-command: secrets', () => {
  it('the child and the hooks get DOOZER_URI without sk= unless --pass-doozer-secret; no log shows it', async () => {
    const bare = server.uri; // doozer:?ca=127.0.0.1:<port>
    const startedAt = monotonicNow();
    const a = ws.start('A', participant('a'));
    const aChild = await ws.pid('a.pid', a);
    const childEnv = environOf(aChild);
    expect(childEnv.get('DOOZER_URI')).toBe(bare);
    expect([...childEnv.values()].join('\n')).not.toContain(SECRET);
    expect(childEnv.get('FENCING_TOKEN')).toMatch(/^\d+$/);

    const hookEnv = envFile('a.hook-env');
    expect(hookEnv.get('DOOZER_URI')).toBe(bare);
    expect(ws.read('a.hook-env')).not.toContain(SECRET);
    // The term's deadline as it stood when the hook ran: after this test
    // started, and at most one renew deadline after now.
    const deadline = Number(hookEnv.get('TERM_DEADLINE_MONOTONIC_MS'));
    expect(deadline).toBeGreaterThan(startedAt);
    expect(deadline).toBeLessThanOrEqual(monotonicNow() + TIMING.renewDeadlineMs);
    expect(hookEnv.get('TERM_DEADLINE')).toMatch(/^\d{13}$/);
    expect(hookEnv.get('FENCING_TOKEN')).toBe(childEnv.get('FENCING_TOKEN'));

    // B, given the URI with --doozer-uri (not the environment), passes the
    // secret on when asked: its child can write to the server with it.
    const b = ws.start(
      'B',
      participant('b', ['--pass-doozer-secret', '--doozer-uri', `${bare}&sk=${SECRET}`]),
      { DOOZER_URI: '' },
    );
    await b.line('stderr', /following master/);
    a.signal('SIGTERM');
    expect(await a.waitExit()).toEqual({ code: 143, signal: null });
    const bChild = await ws.pid('b.pid', b);
    expect(environOf(bChild).get('DOOZER_URI')).toBe(`${bare}&sk=${SECRET}`);
    expect(envFile('b.hook-env').get('DOOZER_URI')).toBe(`${bare}&sk=${SECRET}`);

    b.signal('SIGTERM');
    expect(await b.waitExit()).toEqual({ code: 143, signal: null });
    // Verbose logs of both (the client's and the engine's debug lines included).
    for (const cli of [a, b]) {
      expect(cli.stderr.length).toBeGreaterThan(5);
      expect(cli.transcript()).not.toContain(SECRET);
    }
    expect(b.stderr.join('\n')).toContain('sk=***');
  });
});

/** Runs `sh -c script` to its end; resolves with its exit and output. */
function sh(script: string, args: string[]): Promise<{ exit: Exit; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn('sh', ['-c', script, 'sh', ...args], {
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('close', (code, signal) => resolve({ exit: { code, signal }, out, err }));
  });
}

describe('elect-run-command: a closed stdout', () => {
  it('--help | head -1 prints one line and no error; the CLI exits 0', async () => {
    const r = await sh('{ "$1" "$2" --help 2>"$3"; echo $? > "$4"; } | head -1', [
      process.execPath,
      CLI,
      ws.path('help.err'),
      ws.path('help.status'),
    ]);
    expect(r.exit).toEqual({ code: 0, signal: null });
    expect(r.out).toMatch(/^Usage: elect-run-command/);
    expect(r.out.split('\n').filter(Boolean)).toHaveLength(1);
    expect(ws.read('help.err')).toBe('');
    expect(ws.read('help.status').trim()).toBe('0');
  });

  it('--help into a pipe already closed (EPIPE): exit 0, nothing on stderr', async () => {
    const cli = ws.start('help', ['--help']);
    cli.closeStdout(); // before the CLI has started up: its write fails
    expect(await cli.waitExit()).toEqual({ code: 0, signal: null });
    expect(cli.stderr).toEqual([]);
  });

  it('--observe into a closed pipe keeps running the election, and stops cleanly', async () => {
    const cli = ws.start('observer', ['--participate', '--observe', ...TIMING_FLAGS]);
    cli.closeStdout();
    // The first --observe line is written at start, long before the first term.
    await cli.line('stderr', /became master/);
    cli.signal('SIGTERM');
    expect(await cli.waitExit()).toEqual({ code: 0, signal: null });
    expect(cli.stderr.join('\n')).not.toMatch(/EPIPE|Error|error:/);
  });
});
