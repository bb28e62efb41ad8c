import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { MasterElectionExplorer } from './master-election.explorer.js';
import { MasterElectionMetadataAccessor } from './master-election-metadata.accessor.js';
import { MasterElectionRegistry } from './master-election.registry.js';
import { ShutdownHooksCheck } from './shutdown-hooks.check.js';

/**
 * Imported by every `MasterElectionModule` registration: what they share
 * within one application (one instance per application): the public
 * registry, the one explorer that scans the application for decorated
 * methods, and the bootstrap check for shutdown hooks.
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    MasterElectionRegistry,
    MasterElectionMetadataAccessor,
    MasterElectionExplorer,
    ShutdownHooksCheck,
  ],
  exports: [MasterElectionRegistry],
})
export class MasterElectionCoreModule {}
