/**
 * Signals to, and liveness of, a whole process group: a `--run` child is the
 * leader of its own group, and whatever it starts stays in that group unless
 * it leaves on purpose.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';

function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String(e.code) : undefined;
}

/**
 * Sends `signal` to every process of group `pgid` (`kill(-pgid, signal)`).
 * Returns false when the group no longer exists (ESRCH); other errors throw.
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ESRCH') return false;
    throw e;
  }
}

/**
 * The state letter (`R`, `S`, `Z`, ...) and process group of every process
 * on Linux, from `/proc/<pid>/stat`; `undefined` where there is no `/proc`.
 */
function procGroups(): { pid: number; state: string; pgrp: number }[] | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return undefined;
  }
  const out: { pid: number; state: string; pgrp: number }[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    const pgrp = Number(fields[2]);
    if (state !== undefined && Number.isInteger(pgrp))
      out.push({ pid: Number(entry), state, pgrp });
  }
  return out;
}

/**
 * Whether group `pgid` still has a process that runs. A group whose members
 * are all zombies counts as gone: they hold no resources and do no work, and
 * they can linger for good where PID 1 does not reap orphans (containers).
 * Without `/proc` (not Linux) any member, zombie or not, counts.
 */
export function isGroupAlive(pgid: number): boolean {
  if (!signalGroup(pgid, 0)) return false;
  if (process.platform !== 'linux') return true;
  const members = liveGroupMembers(pgid);
  return members === undefined || members.length > 0;
}

/**
 * The pids of the processes of group `pgid` that are not zombies, from
 * `/proc`; `undefined` where there is no `/proc` (not Linux).
 */
export function liveGroupMembers(pgid: number): number[] | undefined {
  const procs = process.platform === 'linux' ? procGroups() : undefined;
  if (procs === undefined) return undefined;
  return procs
    .filter((p) => p.pgrp === pgid && p.state !== 'Z' && p.state !== 'X')
    .map((p) => p.pid);
}

/**
 * The exit status a shell would report for a process that ended with `code`
 * or was killed by `signal`: the code itself, or 128 + the signal's number.
 */
export function shellStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal === null ? undefined : constants.signals[signal];
  return n === undefined ? 1 : 128 + n;
}
