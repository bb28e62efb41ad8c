/**
 * In-process tests of the CLI's building blocks: option parsing, the kill
 * grace period, secret redaction, the hook runner and exit statuses.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HookRunner, hookShellArgs } from '../../lib/cli/hooks.js';
import { createCliLogger, redactSecrets } from '../../lib/cli/logger.js';
import { killGraceMs, parseCliArgs, UsageError, type CliOptions } from '../../lib/cli/options.js';
import { isGroupAlive, shellStatus } from '../../lib/cli/process-group.js';
import { waitFor } from '../support/wait.js';

const URI = 'doozer:?ca=127.0.0.1:8046';

function parse(argv: string[], env: NodeJS.ProcessEnv = { DOOZER_URI: URI }): CliOptions {
  const options = parseCliArgs(argv, env, { pid: 4242, writeOut: () => {} });
  if (!options) throw new Error('help was printed');
  return options;
}

function usageError(argv: string[], env: NodeJS.ProcessEnv = { DOOZER_URI: URI }): string {
  try {
    parse(argv, env);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('no usage error');
}

describe('parseCliArgs', () => {
  it("has the Go tool's defaults", () => {
    const o = parse([]);
    expect(o).toMatchObject({
      name: 'test',
      participate: false,
      forceElection: false,
      address: '[::1]:4242',
      masterCmd: undefined,
      slaveCmd: undefined,
      errorCmd: undefined,
      doozerBootUri: undefined,
      run: undefined,
      observe: false,
      verbose: false,
      timing: { leaseMs: 10_000, renewDeadlineMs: 7_000, retryPeriodMs: 2_000 },
      killGraceMs: 2_400,
    });
    expect(o.doozerUri?.toString()).toBe(URI);
  });

  it('reads every flag; flags win over the environment', () => {
    const o = parse(
      [
        '--name',
        'jobs',
        '--participate',
        '--force-election',
        '--address',
        '10.0.0.1:80',
        '--master-cmd',
        'm',
        '--slave-cmd',
        's',
        '--error-cmd',
        'e',
        '--doozer-uri',
        'doozer:?ca=127.0.0.2:1',
        '--doozer-boot-uri',
        'doozer:?ca=127.0.0.3:1',
        '--observe',
        '-v',
        '--lease-ms',
        '1000',
        '--renew-deadline-ms',
        '600',
        '--retry-period-ms',
        '200',
      ],
      { DOOZER_URI: URI, DOOZER_BOOT_URI: 'doozer:?ca=127.0.0.9:1' },
    );
    expect(o).toMatchObject({
      name: 'jobs',
      participate: true,
      forceElection: true,
      address: '10.0.0.1:80',
      masterCmd: 'm',
      slaveCmd: 's',
      errorCmd: 'e',
      doozerBootUri: 'doozer:?ca=127.0.0.3:1',
      observe: true,
      verbose: true,
      timing: { leaseMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 200 },
      killGraceMs: 300,
    });
    expect(o.doozerUri?.toString()).toBe('doozer:?ca=127.0.0.2:1');
  });

  it('takes DOOZER_URI and DOOZER_BOOT_URI from the environment', () => {
    const o = parse([], { DOOZER_URI: 'doozer:?cn=prod', DOOZER_BOOT_URI: URI });
    expect(o.doozerUri?.clusterName).toBe('prod');
    expect(o.doozerBootUri).toBe(URI);
  });

  it('--run takes everything after the first operand as the command, options included', () => {
    const o = parse(['--participate', '--run', '--', 'node', 'worker.js', '--verbose', '-x']);
    expect(o.run).toEqual({ command: 'node', args: ['worker.js', '--verbose', '-x'] });
    expect(o.verbose).toBe(false);
    expect(parse(['--participate', '--run', 'sleep', '--name', 'x']).run).toEqual({
      command: 'sleep',
      args: ['--name', 'x'],
    });
  });

  it('applies the engine defaults that depend on the lease', () => {
    expect(parse(['--lease-ms', '1000']).timing).toEqual({
      leaseMs: 1000,
      renewDeadlineMs: 700,
      retryPeriodMs: 200,
    });
  });

  it('rejects bad command lines with a UsageError', () => {
    expect(usageError(['--nope'])).toMatch(/unknown option '--nope'/);
    expect(usageError([], {})).toMatch(/no Doozer URI/);
    expect(usageError([], { DOOZER_URI: '' })).toMatch(/no Doozer URI/);
    expect(usageError(['--doozer-uri', 'doozer:?ca=a:0'])).toMatch(/^bad Doozer URI: /);
    expect(usageError(['--doozer-boot-uri', 'x'])).toMatch(/^bad Doozer boot URI: /);
    expect(usageError(['--name', ''])).toMatch(/^--name: invalid election name/);
    expect(usageError(['--address', 'x y:1'])).toMatch(/^--address: invalid address/);
    expect(usageError(['--lease-ms', '-5'])).toMatch(/^--lease-ms: must be a positive/);
    expect(usageError(['--lease-ms', ''])).toMatch(/--lease-ms/);
    expect(usageError(['--retry-period-ms', '9000'])).toMatch(
      /^--retry-period-ms: must be less than renewDeadlineMs/,
    );
    expect(usageError(['--participate', '--run'])).toMatch(/--run needs a command/);
    expect(usageError(['--run', '--', 'x'])).toMatch(/--run needs --participate/);
    expect(usageError(['stray'])).toMatch(/unexpected argument "stray"/);
  });

  it('never puts a secret into a usage error', () => {
    const secret = 'hunter2';
    for (const argv of [
      ['--doozer-uri', `doozer:?ca=bad!&sk=${secret}`],
      ['--doozer-uri', `doozer:?sk=${secret}&zz=1`],
      [`--doozer-url=doozer:?ca=a&sk=${secret}`],
      ['--doozer-boot-uri', `doozer:?sk=${secret}&ca=:`],
    ]) {
      expect(usageError(argv)).not.toContain(secret);
    }
  });

  it("accepts the Go tool's single-dash flags and explicit booleans", () => {
    const o = parse([
      '-name',
      'jobs',
      '-participate=true',
      '-force-election=false',
      '-address=10.0.0.1:80',
      '-master-cmd',
      '-name is a value here',
      '-run',
      'sleep',
      '-name',
      '1',
    ]);
    expect(o).toMatchObject({
      name: 'jobs',
      participate: true,
      forceElection: false,
      address: '10.0.0.1:80',
      masterCmd: '-name is a value here',
      run: { command: 'sleep', args: ['-name', '1'] },
    });
    expect(usageError(['-participate=maybe'])).toMatch(/participate/);
    expect(usageError(['-nope'])).toMatch(/unknown option/);
  });

  it('prints --help through writeOut and returns null', () => {
    let out = '';
    expect(parseCliArgs(['--help'], {}, { pid: 1, writeOut: (s) => (out += s) })).toBeNull();
    expect(out).toMatch(/^Usage: elect-run-command/);
    expect(out).toContain('--doozer-boot-uri');
  });
});

describe('killGraceMs', () => {
  it('is the gap between lease and renew deadline, less 20% and at least 100 ms', () => {
    expect(killGraceMs(10_000, 7_000)).toBe(2_400);
    expect(killGraceMs(2_000, 1_200)).toBe(640);
    expect(killGraceMs(1_000, 600)).toBe(300);
    expect(killGraceMs(1_000, 900)).toBe(0);
    expect(killGraceMs(1_000, 950)).toBe(0);
  });
});

describe('redactSecrets', () => {
  it('hides every sk= value', () => {
    expect(redactSecrets('doozer:?ca=a:1&sk=abc&cn=x and doozer:?sk=d%20e')).toBe(
      'doozer:?ca=a:1&sk=***&cn=x and doozer:?sk=***',
    );
    expect(redactSecrets("'--x=doozer:?sk=abc'")).toBe("'--x=doozer:?sk=***'");
    expect(redactSecrets('to doozer:?sk=***: refused')).toBe('to doozer:?sk=***: refused');
    expect(redactSecrets('doozer:?sk=a:b')).toBe('doozer:?sk=***');
  });

  it('is applied to every log line', () => {
    const lines: string[] = [];
    const log = createCliLogger('p[1]', (l) => lines.push(l), false);
    log.log('uri doozer:?sk=s1');
    log.warn('w');
    log.error('e');
    log.debug('hidden');
    expect(lines).toEqual(['p[1]: uri doozer:?sk=***\n', 'p[1]: warning: w\n', 'p[1]: error: e\n']);
  });
});

describe('shellStatus', () => {
  it('is the exit code, or 128 + the signal number', () => {
    expect(shellStatus(0, null)).toBe(0);
    expect(shellStatus(7, null)).toBe(7);
    expect(shellStatus(null, 'SIGTERM')).toBe(143);
    expect(shellStatus(null, 'SIGKILL')).toBe(137);
    expect(shellStatus(null, 'SIGINT')).toBe(130);
  });
});

describe('isGroupAlive', () => {
  it('follows a process group until its last process has exited', async () => {
    const child = spawn('sh', ['-c', 'sleep 600 & wait'], { detached: true, stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    const pgid = child.pid!;
    await waitFor(() => isGroupAlive(pgid), 'the group');
    process.kill(-pgid, 'SIGKILL');
    await exited;
    // The orphaned sleep may linger as a zombie where PID 1 does not reap: gone all the same.
    await waitFor(() => !isGroupAlive(pgid), 'the group to be gone');
  });
});

describe('HookRunner', () => {
  let dir: string;
  const warnings: string[] = [];
  const log = createCliLogger('t', (l) => void warnings.push(l), false);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hooks-'));
    warnings.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('builds `sh -c` arguments, passing the error text as an argument', () => {
    expect(hookShellArgs({ kind: 'm', command: 'echo hi', env: {} }, 'x')).toEqual([
      '-c',
      'echo hi',
    ]);
    expect(hookShellArgs({ kind: 'e', command: 'notify', env: {}, args: ['a b'] }, 'x')).toEqual([
      '-c',
      'notify "$@"',
      'x',
      'a b',
    ]);
  });

  it('runs hooks one at a time in order, with their environment and arguments; failures are logged', async () => {
    const out = join(dir, 'out');
    const runner = new HookRunner({ log, argv0: 'elect-run-command' });
    // The first hook is the slowest: if hooks overlapped, "2" would come first.
    runner.enqueue({
      kind: 'master-cmd',
      command: `sleep 0.3; echo "1 $MASTER" >> ${out}`,
      env: { MASTER: 'm:1' },
    });
    runner.enqueue({ kind: 'slave-cmd', command: 'exit 3', env: {} });
    runner.enqueue({
      kind: 'error-cmd',
      command: `printf '2 %s|%s|%s\\n' "$0" >> ${out}`,
      env: {},
      args: [`it's "quoted" $HOME`],
    });
    runner.enqueue({
      kind: 'slave-cmd',
      command: `echo "3 $MASTER" >> ${out}`,
      env: { MASTER: 'm:2' },
    });
    await runner.drain(20_000);
    expect(readFileSync(out, 'utf8')).toBe(
      `1 m:1\n2 elect-run-command|it's "quoted" $HOME|\n3 m:2\n`,
    );
    expect(warnings).toEqual(['t: warning: slave-cmd exited with code 3 (status 3)\n']);
    expect(runner.pending).toBe(0);
  });

  it('drain() stops a hook that outlasts its limit and drops the queued ones', async () => {
    const out = join(dir, 'out');
    const runner = new HookRunner({ log, argv0: 'x' });
    runner.enqueue({ kind: 'slow', command: 'exec sleep 600', env: {} });
    runner.enqueue({ kind: 'never', command: `echo ran >> ${out}`, env: {} });
    await runner.drain(200);
    expect(runner.pending).toBe(0);
    expect(() => readFileSync(out)).toThrow();
    expect(warnings.join('')).toMatch(/never not run/);
    expect(warnings.join('')).toMatch(/slow was killed by SIGTERM/);
  });
});
