import { Module } from '@nestjs/common';
import { MasterElectionRegistry } from './master-election.registry.js';

/**
 * Imported by every `MasterElectionModule` registration: holds what they
 * share within one application (one instance per application).
 */
@Module({ providers: [MasterElectionRegistry], exports: [MasterElectionRegistry] })
export class MasterElectionCoreModule {}
