import type { PrismaClient } from "@gatehouse/db";
import { tenantRefWhere } from "@gatehouse/shared";
import {
  type CallHandler,
  type ExecutionContext,
  Inject,
  Injectable,
  type NestInterceptor,
} from "@nestjs/common";
import { ModuleRef } from "@nestjs/core";
import type { Logger } from "pino";
import { from, mergeMap, type Observable } from "rxjs";
import type { ApiRequest } from "../common/caller.js";
import { LOGGER, PRISMA } from "../common/tokens.js";
import { adminAction, READ_ONLY_ROUTES } from "./admin-audit.js";
import { AdminAuditService, type PendingAdminEvent } from "./admin-audit.service.js";

const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * Records one admin audit event per successful authenticated write, for every route of the API:
 * new routes are covered without opting in (read-only POSTs are listed in READ_ONLY_ROUTES).
 * `before` is the resource as its controller's `get` shows it just before the write (so secrets
 * are already masked); `after` is the write's answer. Failed writes record nothing.
 *
 * The event is written after the write commits, not in its transaction: that covers the writes
 * that do not go through ConfigVersionService (tenant tokens, OAuth clients, tenant creation) and
 * gives before/after as the API shows them. The cost: a crash between the commit and the insert
 * loses that one event, and a write racing between the `before` read and the write is not seen
 * in `before`.
 */
@Injectable()
export class AdminAuditInterceptor implements NestInterceptor {
  constructor(
    @Inject(AdminAuditService) private readonly recorder: AdminAuditService,
    @Inject(ModuleRef) private readonly moduleRef: ModuleRef,
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (ctx.getType() !== "http") return next.handle();
    const request = ctx.switchToHttp().getRequest<ApiRequest>();
    const method = request.method.toUpperCase();
    const route = request.routeOptions?.url;
    // Public routes (no caller) are not admin writes: OAuth callbacks and the like.
    if (!MUTATING.has(method) || !request.caller || !route || READ_ONLY_ROUTES.has(`${method} ${route}`)) {
      return next.handle();
    }
    return from(this.prepare(ctx, request, method, route)).pipe(
      mergeMap((pending) =>
        next.handle().pipe(
          mergeMap(async (body: unknown) => {
            await this.recorder.record(pending, body);
            return body;
          }),
        ),
      ),
    );
  }

  /** What must be read before the write: the tenant's id, the caller's token name, `before`. */
  private async prepare(
    ctx: ExecutionContext,
    request: ApiRequest,
    method: string,
    route: string,
  ): Promise<PendingAdminEvent> {
    const caller = request.caller!;
    const params = (request.params ?? {}) as Record<string, string>;
    const names = [...route.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
    const values = names.map((n) => params[n] ?? "");
    const pending: PendingAdminEvent = {
      action: adminAction(method, route),
      method,
      route,
      caller,
      callerName: null,
      requestId: String(request.id),
      startedAt: performance.now(),
      tenantId: null,
      ref: names.length > 0 && names.at(-1) !== "tenant" ? (values.at(-1) ?? null) : null,
      upstreamParam: params.name && route.includes("/upstreams/:name") ? params.name : null,
      before: null,
    };
    try {
      if (params.tenant) {
        const ref = params.tenant;
        const tenant = await this.prisma.tenant.findFirst({
          where: tenantRefWhere(ref),
          select: { id: true },
        });
        pending.tenantId = tenant?.id ?? null;
      }
      if (caller.kind === "tenant") {
        const token = await this.prisma.adminToken.findUnique({
          where: { id: caller.tokenId },
          select: { name: true },
        });
        pending.callerName = token?.name ?? null;
      } else if (caller.kind === "user") {
        const user = await this.prisma.user.findUnique({
          where: { id: caller.userId },
          select: { email: true, name: true },
        });
        pending.callerName = user?.email ?? user?.name ?? null;
      }
      if (method !== "POST") pending.before = await this.snapshot(ctx, request, values);
    } catch (err) {
      // The write itself decides what the caller gets (404, 403 …); the audit reads never do.
      this.log.debug({ err, reqId: request.id }, "admin audit: could not read the state before the write");
    }
    return pending;
  }

  /**
   * The resource as the same controller's `get(caller, ...routeParams)` shows it, when the
   * controller has one taking exactly the route's parameters (tenants, upstreams, api-keys,
   * identity providers, policy, OAuth clients). Otherwise null.
   */
  private async snapshot(ctx: ExecutionContext, request: ApiRequest, values: string[]): Promise<unknown> {
    const controller = this.moduleRef.get(ctx.getClass(), { strict: false }) as Record<string, unknown>;
    const get = controller?.get;
    if (typeof get !== "function" || get.length !== values.length + 1) return null;
    return (await get.call(controller, request.caller, ...values)) ?? null;
  }
}
