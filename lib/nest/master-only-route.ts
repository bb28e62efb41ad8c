/**
 * Routes (and other handlers: RPC, WebSocket) that must run only on the
 * master: `@MasterOnlyRoute(name?)`, or `MasterElectionGuard` /
 * `MasterElectionInterceptor` bound by hand (`@UseGuards`,
 * `@UseInterceptors`). Elsewhere the request fails with
 * {@link NotMasterException}: HTTP 503, naming the current master so a
 * client or a load balancer can go there instead.
 */
import {
  applyDecorators,
  Injectable,
  SetMetadata,
  ServiceUnavailableException,
  UseGuards,
  type CallHandler,
  type CanActivate,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Observable } from 'rxjs';
import { MasterElectionRegistry } from './master-election.registry.js';
import type { MasterElectionService } from './master-election.service.js';

/** Metadata key of {@link MasterOnlyRoute}: the election name (`null`: the default registration). */
export const MASTER_ONLY_ROUTE = 'nestjs-master-election:master-only-route';

/**
 * Thrown for a request that reached a replica that is not the master of the
 * route's election: HTTP 503 Service Unavailable. Its response body names
 * the election and the current master's address (`''` when none is known).
 */
export class NotMasterException extends ServiceUnavailableException {
  /** The election the route belongs to. */
  readonly election: string;
  /** The current master's `host:port`, `''` when no master is known. */
  readonly master: string;

  constructor(election: string, master: string) {
    const message =
      master === ''
        ? `this replica is not the master of election "${election}", and no master is known now`
        : `this replica is not the master of election "${election}"; the master is ${master}`;
    super({ statusCode: 503, error: 'Service Unavailable', message, election, master });
    this.election = election;
    this.master = master;
  }
}

/** Thrown when a master-only route names an election the application did not register. */
export class UnknownRouteElectionError extends Error {
  constructor(name: string | null, where: string) {
    super(
      name === null
        ? `${where} is master-only, but the application registered no default election (MasterElectionModule.forRoot without isDefault: false)`
        : `${where} is master-only for election "${name}", which the application did not register`,
    );
    this.name = 'UnknownRouteElectionError';
  }
}

/**
 * Marks a controller or route handler as master-only and guards it: on a
 * replica that is not the master of `name` (the default registration when
 * left out) the request fails with {@link NotMasterException} (503).
 */
export function MasterOnlyRoute(name?: string): ClassDecorator & MethodDecorator {
  return applyDecorators(
    SetMetadata(MASTER_ONLY_ROUTE, name ?? null),
    UseGuards(MasterElectionGuard),
  );
}

/** The election a handler's `@MasterOnlyRoute` names, `undefined` when it has none. */
function routeElection(reflector: Reflector, ctx: ExecutionContext): string | null | undefined {
  return reflector.getAllAndOverride<string | null | undefined>(MASTER_ONLY_ROUTE, [
    ctx.getHandler(),
    ctx.getClass(),
  ]);
}

/**
 * Checks mastership for a handler: the election named by its
 * `@MasterOnlyRoute` metadata, else the default registration. Throws
 * {@link NotMasterException} on a non-master, {@link UnknownRouteElectionError}
 * when the election does not exist (a programming error, so HTTP 500).
 */
function assertMaster(
  registry: MasterElectionRegistry,
  reflector: Reflector,
  ctx: ExecutionContext,
): void {
  const name = routeElection(reflector, ctx) ?? null;
  const service: MasterElectionService | undefined =
    name === null ? registry.getDefault() : registry.get(name);
  if (!service) {
    throw new UnknownRouteElectionError(name, `${ctx.getClass().name}.${ctx.getHandler().name}`);
  }
  if (!service.isMaster()) throw new NotMasterException(service.name, service.getCurrentMaster());
}

/**
 * A guard letting a request through only on the master (of the election
 * named by `@MasterOnlyRoute(name)`, else of the default registration), on
 * every handler it guards: bind it with `@UseGuards(MasterElectionGuard)` on
 * a controller or a route, or use `@MasterOnlyRoute(name?)`, which does both.
 */
@Injectable()
export class MasterElectionGuard implements CanActivate {
  constructor(
    private readonly registry: MasterElectionRegistry,
    private readonly reflector: Reflector,
  ) {}

  canActivate(ctx: ExecutionContext): boolean {
    assertMaster(this.registry, this.reflector, ctx);
    return true;
  }
}

/**
 * The interceptor form of {@link MasterElectionGuard} (`@UseInterceptors`),
 * for stacks that check access in interceptors: the same check, at the same
 * moment (before the handler runs), the same {@link NotMasterException}.
 */
@Injectable()
export class MasterElectionInterceptor implements NestInterceptor {
  constructor(
    private readonly registry: MasterElectionRegistry,
    private readonly reflector: Reflector,
  ) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    assertMaster(this.registry, this.reflector, ctx);
    return next.handle();
  }
}
