import type { MasterElectionEventReceiver, MasterTerm } from '../../lib/election/index.js';

export type Recorded =
  | { type: 'master'; token: number }
  | { type: 'slave'; master: string }
  | { type: 'error'; error: Error }
  | { type: 'fatal'; error: Error };

/** A receiver that records every notification in order. */
export class Recorder implements MasterElectionEventReceiver {
  readonly events: Recorded[] = [];
  terms: MasterTerm[] = [];
  failBecomeMaster: Error | null = null;

  becomeMaster(term: MasterTerm): void {
    this.events.push({ type: 'master', token: term.fencingToken });
    this.terms.push(term);
    if (this.failBecomeMaster) throw this.failBecomeMaster;
  }
  /** The fencing token passed with each becomeSlave, in order. */
  readonly slaveTokens: number[] = [];

  becomeSlave(master: string, fencingToken: number): void {
    this.events.push({ type: 'slave', master });
    this.slaveTokens.push(fencingToken);
  }
  electionError(error: Error): void {
    this.events.push({ type: 'error', error });
  }
  electionFatal(error: Error): void {
    this.events.push({ type: 'fatal', error });
  }

  count(type: Recorded['type']): number {
    return this.events.filter((e) => e.type === type).length;
  }
  slaves(): string[] {
    return this.events.flatMap((e) => (e.type === 'slave' ? [e.master] : []));
  }
  errors(): Error[] {
    return this.events.flatMap((e) => (e.type === 'error' ? [e.error] : []));
  }
}
