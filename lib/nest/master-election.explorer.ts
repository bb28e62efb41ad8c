import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { DEFAULT_ELECTION, LOGGER_CONTEXT } from './master-election.constants.js';
import {
  DECORATOR_OF,
  NON_STATIC_MASTER_ONLY,
  NON_STATIC_PROVIDER,
} from './master-election.messages.js';
import { MasterElectionMetadataAccessor } from './master-election-metadata.accessor.js';
import { MasterElectionRegistry, type RegisteredElection } from './master-election.registry.js';
import { bindMasterOnly } from './master-only.registry.js';

type InstanceWrapper = ReturnType<DiscoveryService['getProviders']>[number];

/**
 * The application's one explorer (like `@nestjs/schedule`'s): at module
 * init, scans every static provider and controller once, and routes each
 * decorated method by its election name to the registration it selects: event
 * handlers to that registration's orchestrator, `@MasterOnly` methods bound
 * to its gate. The elections start later, at bootstrap, so no event is lost.
 */
@Injectable()
export class MasterElectionExplorer implements OnModuleInit {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private explored = false;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly accessor: MasterElectionMetadataAccessor,
    private readonly registry: MasterElectionRegistry,
  ) {}

  onModuleInit(): void {
    this.explore();
  }

  /** Scans the application (once: every registration is known by now, from its constructor). */
  explore(): void {
    if (this.explored) return;
    this.explored = true;
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

  private selected(name: string | undefined): RegisteredElection | undefined {
    return name === undefined
      ? this.registry.defaultRegistration()
      : this.registry.registration(name);
  }

  private exploreMethod(wrapper: InstanceWrapper, instance: object, methodName: string): void {
    const method = (instance as Record<string, unknown>)[methodName];
    const handlers = this.accessor.getHandlers(method);
    const masterOnly = this.accessor.getMasterOnly(method);
    if (handlers.length === 0 && !masterOnly) return;
    const label = `${instance.constructor.name}.${methodName}`;
    for (const h of handlers) this.registry.declare({ event: h.event, name: h.name, label });
    if (masterOnly) this.registry.declare({ event: 'masterOnly', name: masterOnly.name, label });

    const isStatic = wrapper.isDependencyTreeStatic() && !wrapper.isTransient;
    if (!isStatic) {
      for (const h of handlers) {
        if (this.selected(h.name)) {
          this.logger.warn(NON_STATIC_PROVIDER(DECORATOR_OF[h.event], label, h.name));
        }
      }
      if (masterOnly && this.selected(masterOnly.name)) {
        this.logger.warn(NON_STATIC_MASTER_ONLY(label, masterOnly.name));
      }
      return;
    }
    // Stacked twice for one election: delivered once.
    const added = new Set<string>();
    for (const h of handlers) {
      const election = this.selected(h.name);
      const key = `${election?.name ?? ''}\u0000${h.event}`;
      if (!election || added.has(key)) continue;
      added.add(key);
      election.orchestrator.add(h.event, { instance, methodName, label });
    }
    const target = masterOnly && this.selected(masterOnly.name);
    if (target) bindMasterOnly(instance, masterOnly.name ?? DEFAULT_ELECTION, target.gate);
  }
}
