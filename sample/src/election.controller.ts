import { Controller, Get } from '@nestjs/common';
import { MasterElectionService, type ElectionRole } from 'nestjs-master-election';

/** What `GET /election` answers. */
export interface ElectionStatus {
  /** `master`, `slave`, `candidate` (no master known yet) or `stopped`. */
  readonly role: ElectionRole;
  /** The master's address (`host:port`), `''` while none is known. */
  readonly master: string;
  /** The master term's fencing token, 0 while no master is known. */
  readonly term: number;
  /** This replica's own advertised address. */
  readonly address: string;
}

@Controller('election')
export class ElectionController {
  constructor(private readonly election: MasterElectionService) {}

  /** This replica's view of the election (local state, no Doozer round trip). */
  @Get()
  status(): ElectionStatus {
    const { role, master, term } = this.election.state;
    return { role, master, term, address: this.election.address };
  }
}
