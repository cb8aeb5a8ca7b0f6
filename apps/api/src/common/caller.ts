import type { AdminTokenRole } from "@gatehouse/shared";
import { createParamDecorator, type ExecutionContext, SetMetadata } from "@nestjs/common";
import type { FastifyRequest } from "fastify";
import type { ActiveSession } from "../auth/sessions.service.js";

/** Who is calling the REST API. Set by `AuthGuard` on every non-public route. */
export type Caller =
  | { kind: "platform" }
  | { kind: "tenant"; tenantId: string; tokenId: string; role: AdminTokenRole }
  /** A console session (cookie). Its role in a tenant is its membership, read on each request. */
  | { kind: "user"; userId: string; sessionId: string; platformAdmin: boolean };

export type ApiRequest = FastifyRequest & {
  caller?: Caller;
  /** The console session behind a `user` caller. */
  consoleSession?: ActiveSession;
};

/** The authenticated caller of this request. */
export const CallerParam = createParamDecorator((_data: unknown, ctx: ExecutionContext): Caller => {
  const caller = ctx.switchToHttp().getRequest<ApiRequest>().caller;
  if (!caller) throw new Error("CallerParam used on a route without AuthGuard");
  return caller;
});

export const PUBLIC_ROUTE = "gatehouse:public";
/** Marks a route (or controller) that needs no credentials: health, readiness, metrics. */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);

/** How an audit trail or `createdBy` names the caller; never contains a secret. */
export function describeCaller(caller: Caller): string {
  if (caller.kind === "platform") return "platform-admin";
  return caller.kind === "user" ? `user:${caller.userId}` : `token:${caller.tokenId}`;
}
