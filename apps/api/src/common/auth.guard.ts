import type { PrismaClient } from "@gatehouse/db";
import { AppError, CSRF_HEADER, ErrorCode, SESSION_COOKIE } from "@gatehouse/shared";
import { hashToken, looksLikeAdminToken, safeEqual } from "@gatehouse/shared/node";
import { type CanActivate, type ExecutionContext, Inject, Injectable } from "@nestjs/common";
import { Reflector } from "@nestjs/core";
import type { Logger } from "pino";
import { readCookie, SessionsService } from "../auth/sessions.service.js";
import type { ApiConfig } from "../config/api.config.js";
import { type ApiRequest, type Caller, PUBLIC_ROUTE } from "./caller.js";
import { API_CONFIG, LOGGER, PRISMA } from "./tokens.js";

// lastUsedAt is informational: write it at most once a minute per token.
const LAST_USED_RESOLUTION_MS = 60_000;

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * `Authorization: Bearer <token>` on every route not marked @Public: the platform admin token
 * (compared in constant time) or a tenant-scoped admin token `mgt_…` (looked up by hash). Without
 * that header, the console session cookie; a session's state-changing requests must also carry its
 * CSRF token in `X-CSRF-Token` (a cookie rides along on cross-site requests, that header cannot).
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(SessionsService) private readonly sessions: SessionsService,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, [ctx.getHandler(), ctx.getClass()]))
      return true;
    const request = ctx.switchToHttp().getRequest<ApiRequest>();
    const cookie = request.headers.authorization
      ? undefined
      : readCookie(request.headers.cookie, SESSION_COOKIE);
    request.caller = cookie
      ? await this.authenticateSession(request, cookie)
      : await this.authenticate(request.headers.authorization);
    return true;
  }

  private async authenticateSession(request: ApiRequest, token: string): Promise<Caller> {
    const session = await this.sessions.authenticate(token);
    const csrf = request.headers[CSRF_HEADER];
    if (!session) {
      throw new AppError(ErrorCode.UNAUTHENTICATED, "Your console session has ended; sign in again");
    }
    if (
      !SAFE_METHODS.has(request.method.toUpperCase()) &&
      !this.sessions.checkCsrf(session.id, typeof csrf === "string" ? csrf : undefined)
    ) {
      throw new AppError(
        ErrorCode.FORBIDDEN,
        "Missing or wrong CSRF token: send the session's csrfToken (GET /v1/auth/me) as X-CSRF-Token",
      );
    }
    request.consoleSession = session;
    return {
      kind: "user",
      userId: session.user.id,
      sessionId: session.id,
      platformAdmin: session.user.platformAdmin,
    };
  }

  private async authenticate(header: string | undefined): Promise<Caller> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
    if (!match?.[1]) {
      throw new AppError(
        ErrorCode.UNAUTHENTICATED,
        "Missing credentials: send `Authorization: Bearer <token>` with the platform admin token or a tenant admin token",
      );
    }
    const token = match[1];
    if (safeEqual(token, this.config.ADMIN_TOKEN)) return { kind: "platform" };
    if (looksLikeAdminToken(token)) {
      const row = await this.prisma.adminToken.findUnique({ where: { hash: hashToken(token) } });
      if (row && (!row.expiresAt || row.expiresAt > new Date())) {
        this.touch(row.id, row.lastUsedAt);
        return { kind: "tenant", tenantId: row.tenantId, tokenId: row.id, role: row.role };
      }
    }
    throw new AppError(ErrorCode.UNAUTHENTICATED, "Unknown, expired or revoked token");
  }

  private touch(id: string, lastUsedAt: Date | null): void {
    const now = new Date();
    if (lastUsedAt && now.getTime() - lastUsedAt.getTime() < LAST_USED_RESOLUTION_MS) return;
    this.prisma.adminToken
      .updateMany({ where: { id }, data: { lastUsedAt: now } })
      .catch((err: unknown) => this.log.warn({ err }, "could not record admin token use"));
  }
}
