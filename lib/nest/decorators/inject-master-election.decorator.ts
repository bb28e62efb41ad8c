import { Inject } from '@nestjs/common';
import { getMasterElectionToken } from '../master-election.constants.js';
import { MasterElectionService } from '../master-election.service.js';

/**
 * Injects the {@link MasterElectionService} of the election registered as
 * `name`, or of the default registration when `name` is left out (the same
 * as injecting `MasterElectionService` by type).
 *
 * A `forRootAsync()` registration can be injected by name only if it was
 * given its `name` statically.
 */
export function InjectMasterElection(name?: string): PropertyDecorator & ParameterDecorator {
  return Inject(name === undefined ? MasterElectionService : getMasterElectionToken(name));
}
