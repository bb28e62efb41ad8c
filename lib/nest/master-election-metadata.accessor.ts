import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { ELECTION_HANDLERS_METADATA, MASTER_ONLY_METADATA } from './master-election.constants.js';

/** The notifications of an election that decorated methods can handle. */
export type ElectionEvent = 'becomeMaster' | 'becomeSlave' | 'electionError' | 'electionFatal';

/** One election event handler declared on a method by a decorator. */
export interface ElectionHandlerMetadata {
  readonly event: ElectionEvent;
  /** The election name given to the decorator; undefined selects the default registration. */
  readonly name: string | undefined;
}

/** What `@MasterOnly()` records on the method wrapper. */
export interface MasterOnlyMetadata {
  /** The election name given to the decorator; undefined selects the default registration. */
  readonly name: string | undefined;
}

const isFunction = (value: unknown): value is (...args: unknown[]) => unknown =>
  typeof value === 'function';

/** Reads the metadata the decorators leave on methods. */
@Injectable()
export class MasterElectionMetadataAccessor {
  /** The event handlers a method declares (none for anything that is not a decorated function). */
  getHandlers(method: unknown): readonly ElectionHandlerMetadata[] {
    if (!isFunction(method)) return [];
    return (
      (Reflect.getMetadata(ELECTION_HANDLERS_METADATA, method) as
        readonly ElectionHandlerMetadata[] | undefined) ?? []
    );
  }

  /** The `@MasterOnly()` metadata of a method, if it has some. */
  getMasterOnly(method: unknown): MasterOnlyMetadata | undefined {
    if (!isFunction(method)) return undefined;
    return Reflect.getMetadata(MASTER_ONLY_METADATA, method) as MasterOnlyMetadata | undefined;
  }
}
