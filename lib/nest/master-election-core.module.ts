import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { MasterElectionExplorer } from './master-election.explorer.js';
import { MasterElectionMetadataAccessor } from './master-election-metadata.accessor.js';
import { MasterElectionRegistry } from './master-election.registry.js';

/**
 * Imported by every `MasterElectionModule` registration: what they share
 * within one application (one instance per application): the public
 * registry and the one explorer that scans the application for decorated
 * methods.
 */
@Module({
  imports: [DiscoveryModule],
  providers: [MasterElectionRegistry, MasterElectionMetadataAccessor, MasterElectionExplorer],
  exports: [MasterElectionRegistry],
})
export class MasterElectionCoreModule {}
