import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import {
  DEFAULT_ELECTION,
  LOGGER_CONTEXT,
  MASTER_ELECTION_INSTANCE,
} from './master-election.constants.js';
import {
  DECORATOR_OF,
  NON_STATIC_MASTER_ONLY,
  NON_STATIC_PROVIDER,
} from './master-election.messages.js';
import { MasterElectionMetadataAccessor } from './master-election-metadata.accessor.js';
import { MasterElectionOrchestrator } from './master-election.orchestrator.js';
import { MasterElectionRegistry } from './master-election.registry.js';
import type { MasterElectionService } from './master-election.service.js';
import { MasterOnlyGate } from './master-only.gate.js';
import { bindMasterOnly } from './master-only.registry.js';

type InstanceWrapper = ReturnType<DiscoveryService['getProviders']>[number];

/**
 * Finds, at module init, the decorated methods of every static provider and
 * controller that select this registration's election, and hands them to
 * the orchestrator (event handlers) or binds them to the service
 * (`@MasterOnly`). The election starts later, at bootstrap, so no event is
 * lost.
 */
@Injectable()
export class MasterElectionExplorer implements OnModuleInit {
  private readonly logger = new Logger(LOGGER_CONTEXT);

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly accessor: MasterElectionMetadataAccessor,
    private readonly orchestrator: MasterElectionOrchestrator,
    private readonly registry: MasterElectionRegistry,
    @Inject(MASTER_ELECTION_INSTANCE) private readonly service: MasterElectionService,
    private readonly gate: MasterOnlyGate,
  ) {}

  onModuleInit(): void {
    this.explore();
  }

  /** Scans the application once. */
  explore(): void {
    const seen = new Set<object>();
    for (const wrapper of [...this.discovery.getControllers(), ...this.discovery.getProviders()]) {
      const instance: unknown = wrapper.instance;
      if (typeof instance !== 'object' || instance === null || seen.has(instance)) continue;
      const prototype: unknown = Object.getPrototypeOf(instance);
      if (typeof prototype !== 'object' || prototype === null) continue;
      seen.add(instance); // the same instance under several tokens (useExisting): handle once
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        this.exploreMethod(wrapper, instance, methodName);
      }
    }
  }

  private selects(name: string | undefined): boolean {
    return name === undefined ? this.service.isDefault : name === this.service.name;
  }

  private exploreMethod(wrapper: InstanceWrapper, instance: object, methodName: string): void {
    const method = (instance as Record<string, unknown>)[methodName];
    const handlers = this.accessor.getHandlers(method);
    const masterOnly = this.accessor.getMasterOnly(method);
    if (handlers.length === 0 && !masterOnly) return;
    const label = `${instance.constructor.name}.${methodName}`;
    for (const h of handlers) this.registry.declare({ event: h.event, name: h.name, label });
    if (masterOnly) this.registry.declare({ event: 'masterOnly', name: masterOnly.name, label });

    const mine = handlers.filter((h) => this.selects(h.name));
    const isStatic = wrapper.isDependencyTreeStatic() && !wrapper.isTransient;
    if (!isStatic) {
      for (const h of mine) {
        this.logger.warn(NON_STATIC_PROVIDER(DECORATOR_OF[h.event], label, h.name));
      }
      if (masterOnly && this.selects(masterOnly.name)) {
        this.logger.warn(NON_STATIC_MASTER_ONLY(label, masterOnly.name));
      }
      return;
    }
    const events = new Set(mine.map((h) => h.event)); // stacked twice for one election: once
    for (const event of events) this.orchestrator.add(event, { instance, methodName, label });
    if (masterOnly && this.selects(masterOnly.name)) {
      bindMasterOnly(instance, masterOnly.name ?? DEFAULT_ELECTION, this.gate);
    }
  }
}
