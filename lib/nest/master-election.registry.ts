import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { DoozerConnectionPool } from './doozer-connection.pool.js';
import { UriStorePool } from './uri-store.pool.js';
import { LOGGER_CONTEXT } from './master-election.constants.js';
import {
  DECORATOR_OF,
  DUPLICATE_DEFAULT,
  DUPLICATE_ELECTION,
  NO_DEFAULT_ELECTION,
  UNKNOWN_ELECTION,
} from './master-election.messages.js';
import type { ElectionEvent } from './master-election-metadata.accessor.js';
import type { MasterElectionService } from './master-election.service.js';
import type { MasterElectionOrchestrator } from './master-election.orchestrator.js';
import type { MasterOnlyGate } from './master-only.gate.js';

/** What the registry knows of a registration. */
export interface RegisteredElection {
  /** The election name. */
  readonly name: string;
  readonly isDefault: boolean;
  readonly service: MasterElectionService;
  /** Where its event handlers go. */
  readonly orchestrator: MasterElectionOrchestrator;
  /** Where its `@MasterOnly` methods are bound. */
  readonly gate: MasterOnlyGate;
}

/** A decorator found on a method, whichever registration it selects. */
export interface DeclaredHandler {
  readonly event: ElectionEvent | 'masterOnly';
  readonly name: string | undefined;
  readonly label: string;
}

/**
 * The elections of one application (shared by its `MasterElectionModule`
 * registrations): lists them and looks them up by name (inject it anywhere,
 * like `SchedulerRegistry`), checks that names and the default are unique,
 * warns about decorators that select no registration, and holds the shared
 * Doozer connections.
 */
@Injectable()
export class MasterElectionRegistry implements OnApplicationShutdown {
  /** The application's Doozer connections, one per URI. */
  readonly connections = new DoozerConnectionPool();
  /** The application's etcd and PostgreSQL stores opened from a `uri`, one per URI. */
  readonly stores = new UriStorePool();
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly elections = new Map<string, RegisteredElection>();
  private readonly declared = new Map<string, DeclaredHandler>();
  private checked = false;

  /** The service of every election registered in this application, in registration order. */
  list(): readonly MasterElectionService[] {
    return [...this.elections.values()].map((e) => e.service);
  }

  /** The service of the election registered as `name`, if any. */
  get(name: string): MasterElectionService | undefined {
    return this.elections.get(name)?.service;
  }

  /** The service of the default registration, if there is one. */
  getDefault(): MasterElectionService | undefined {
    return this.defaultRegistration()?.service;
  }

  /** @internal The registration of `name`. */
  registration(name: string): RegisteredElection | undefined {
    return this.elections.get(name);
  }

  /** @internal The default registration. */
  defaultRegistration(): RegisteredElection | undefined {
    return [...this.elections.values()].find((e) => e.isDefault);
  }

  /**
   * Adds a registration; throws when its name, or its being the default, is already taken.
   * @internal Called by each registration's service.
   */
  register(election: RegisteredElection): void {
    if (this.elections.has(election.name)) throw new Error(DUPLICATE_ELECTION(election.name));
    if (election.isDefault) {
      const other = [...this.elections.values()].find((e) => e.isDefault);
      if (other) throw new Error(DUPLICATE_DEFAULT(other.name, election.name));
    }
    this.elections.set(election.name, election);
  }

  /**
   * Notes a decorator seen on a method, for {@link checkDeclarations}.
   * @internal
   */
  declare(handler: DeclaredHandler): void {
    this.declared.set(`${handler.label}\u0000${handler.event}\u0000${handler.name ?? ''}`, handler);
  }

  /**
   * Warns (once) about every declared decorator that selects no registered
   * election. Called by each registration at bootstrap, when every
   * registration has explored the application.
   */
  checkDeclarations(): void {
    if (this.checked) return;
    this.checked = true;
    const hasDefault = [...this.elections.values()].some((e) => e.isDefault);
    for (const d of this.declared.values()) {
      const decorator = d.event === 'masterOnly' ? '@MasterOnly' : DECORATOR_OF[d.event];
      if (d.name === undefined) {
        if (!hasDefault) this.logger.warn(NO_DEFAULT_ELECTION(decorator, d.label));
      } else if (!this.elections.has(d.name)) {
        this.logger.warn(UNKNOWN_ELECTION(decorator, d.label, d.name));
      }
    }
  }

  /** Closes connections left open (every registration releases its own before this runs). */
  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.connections.closeAll(), this.stores.closeAll()]);
  }
}
