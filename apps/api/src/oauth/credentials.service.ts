import type { OAuthClient, PrismaClient, Upstream, UpstreamCredential } from "@gatehouse/db";
import {
  AppError,
  type Bus,
  BusChannel,
  type CredentialEvent,
  ErrorCode,
  oauthGrantOf,
  readOAuthAuthConfig,
  type UpstreamCredentialView,
} from "@gatehouse/shared";
import type { Sealer } from "@gatehouse/shared/node";
import { Inject, Injectable } from "@nestjs/common";
import * as oidc from "openid-client";
import type { Logger } from "pino";
import { BUS, LOGGER, PRISMA, SEALER } from "../common/tokens.js";
import type { JobRunner } from "../jobs/job.types.js";
import { JOB_RUNNER } from "../jobs/jobs.tokens.js";
import { McpOAuthService } from "./mcp-oauth.service.js";
import { CredentialRefreshJob, credentialGroup, ReconcileJob } from "./oauth.jobs.js";
import { OAUTH_METRICS, type OAuthMetrics } from "./oauth.metrics.js";
import { OAUTH_SERVERS } from "./oauth.tokens.js";
import { describeOAuthError, type OAuthFailure } from "./oauth-errors.js";
import type { OAuthServers } from "./oauth-servers.js";
import { refreshAt } from "./refresh-schedule.js";

/**
 * One worker owns a credential's refresh for at most this long: a try's timeout plus a margin. A
 * worker that dies mid-refresh blocks that credential for this long at most.
 */
const LEASE_MS = CredentialRefreshJob.timeoutMs + 5_000;
/** On-demand refreshes of one stale token are merged within this window. */
const ON_DEMAND_BUCKET_MS = 30_000;
/** Token request parameters taken from an OAuth client's `extraParams` (the rest are for the authorization request). */
const TOKEN_REQUEST_PARAMS = ["resource", "audience"];

/** Tokens from a token endpoint response, before sealing. */
export interface TokenSet {
  accessToken: string;
  refreshToken: string | null;
  tokenType: string | null;
  scope: string | null;
  expiresAt: Date | null;
}

export type RefreshOutcome =
  | { outcome: "refreshed"; generation: number; expiresAt: string | null }
  | { outcome: "skipped"; reason: string }
  | { outcome: "needs_reconnect"; reason: string };

type CredentialWithUpstream = UpstreamCredential & {
  upstream: Upstream & { oauthClient: OAuthClient | null };
};

export function toTokenSet(
  response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers,
): TokenSet {
  const expiresIn = response.expiresIn();
  return {
    accessToken: response.access_token,
    refreshToken: response.refresh_token ?? null,
    tokenType: response.token_type ?? null,
    scope: response.scope ?? null,
    expiresAt: expiresIn === undefined ? null : new Date(Date.now() + expiresIn * 1000),
  };
}

/** Parameters every token request of this upstream carries (RFC 8707 `resource`, `audience`). */
export function tokenRequestParams(
  upstream: Pick<Upstream, "authConfig">,
  client: Pick<OAuthClient, "extraParams">,
) {
  const params: Record<string, string> = {};
  const extra = (client.extraParams ?? {}) as Record<string, unknown>;
  for (const name of TOKEN_REQUEST_PARAMS) {
    if (typeof extra[name] === "string") params[name] = extra[name];
  }
  const config = readOAuthAuthConfig(upstream.authConfig);
  if (config.resource) params.resource = config.resource;
  return params;
}

/** The scopes to ask for: the upstream's own, else its OAuth client's. */
export function scopesFor(
  upstream: Pick<Upstream, "authConfig">,
  client: Pick<OAuthClient, "scopes">,
): string[] {
  return readOAuthAuthConfig(upstream.authConfig).scopes ?? client.scopes;
}

/**
 * Owns upstream credentials: stores tokens sealed, refreshes them (one worker at a time per
 * credential, rotated refresh tokens written in the same row update as the access token),
 * schedules the next refresh before expiry, marks permanent failures `needs_reconnect` (audit
 * event, metric, bus event), and announces every change on the bus.
 */
@Injectable()
export class CredentialsService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(SEALER) private readonly sealer: Sealer,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(JOB_RUNNER) private readonly jobs: JobRunner,
    @Inject(OAUTH_SERVERS) private readonly servers: OAuthServers,
    @Inject(OAUTH_METRICS) private readonly metrics: OAuthMetrics,
    @Inject(McpOAuthService) private readonly mcp: McpOAuthService,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  /**
   * Stores new tokens for `(upstream, subject)` (connect callback, first token): a new
   * generation, status active, errors cleared. Announces it and schedules the refresh.
   */
  async storeTokens(
    upstream: Pick<Upstream, "id" | "tenantId">,
    subject: string,
    tokens: TokenSet,
  ): Promise<UpstreamCredential> {
    const now = new Date();
    const sealed = {
      accessTokenSealed: this.sealer.seal(tokens.accessToken),
      refreshTokenSealed: tokens.refreshToken ? this.sealer.seal(tokens.refreshToken) : null,
      tokenType: tokens.tokenType,
      scope: tokens.scope,
      expiresAt: tokens.expiresAt,
      status: "active" as const,
      lastRefreshAt: now,
      lastRefreshError: null,
      failureCount: 0,
      refreshLeaseUntil: null,
    };
    const row = await this.prisma.upstreamCredential.upsert({
      where: { upstreamId_subject: { upstreamId: upstream.id, subject } },
      create: { tenantId: upstream.tenantId, upstreamId: upstream.id, subject, generation: 1, ...sealed },
      update: { ...sealed, generation: { increment: 1 } },
    });
    await this.announceUpdated(row);
    await this.schedule(row);
    return row;
  }

  /**
   * Refreshes one credential if it is still at `generation` and nobody else is refreshing it.
   * Transient failures throw (the job retries with backoff); permanent ones end in
   * `needs_reconnect`.
   */
  async refresh(credentialId: string, generation: number): Promise<RefreshOutcome> {
    const now = Date.now();
    const lease = await this.prisma.upstreamCredential.updateMany({
      where: {
        id: credentialId,
        generation,
        status: { not: "needs_reconnect" },
        OR: [{ refreshLeaseUntil: null }, { refreshLeaseUntil: { lt: new Date(now) } }],
      },
      data: { refreshLeaseUntil: new Date(now + LEASE_MS), status: "refreshing" },
    });
    if (lease.count === 0)
      return { outcome: "skipped", reason: await this.whySkipped(credentialId, generation) };

    const cred = (await this.prisma.upstreamCredential.findUnique({
      where: { id: credentialId },
      include: { upstream: { include: { oauthClient: true } } },
    })) as CredentialWithUpstream | null;
    if (!cred) return { outcome: "skipped", reason: "credential deleted" };
    const grant = oauthGrantOf(cred.upstream.authMode, readOAuthAuthConfig(cred.upstream.authConfig));

    let tokens: TokenSet;
    try {
      tokens = await this.requestTokens(cred, grant);
    } catch (error) {
      const failure = error instanceof PermanentCredentialError ? error.failure : describeOAuthError(error);
      this.metrics.tokenRequests.inc({ grant, result: failure.permanent ? "permanent" : "transient" });
      if (failure.permanent) {
        await this.markNeedsReconnect(cred, generation, failure.message);
        return { outcome: "needs_reconnect", reason: failure.message };
      }
      await this.recordTransientFailure(cred, generation, failure.message);
      throw new Error(failure.message);
    }
    this.metrics.tokenRequests.inc({ grant, result: "ok" });

    // The lease keeps other workers out; the generation check keeps a concurrent reconnect's tokens.
    const written = await this.prisma.upstreamCredential.updateMany({
      where: { id: credentialId, generation },
      data: {
        accessTokenSealed: this.sealer.seal(tokens.accessToken),
        // Rotated refresh tokens replace the old one in the same statement; servers that do not
        // rotate keep the old one valid.
        ...(tokens.refreshToken ? { refreshTokenSealed: this.sealer.seal(tokens.refreshToken) } : {}),
        tokenType: tokens.tokenType,
        scope: tokens.scope ?? cred.scope,
        expiresAt: tokens.expiresAt,
        generation: { increment: 1 },
        status: "active",
        lastRefreshAt: new Date(),
        lastRefreshError: null,
        failureCount: 0,
        refreshLeaseUntil: null,
      },
    });
    if (written.count === 0)
      return { outcome: "skipped", reason: "replaced by a reconnect while refreshing" };
    const row = await this.prisma.upstreamCredential.findUniqueOrThrow({ where: { id: credentialId } });
    await this.announceUpdated(row);
    await this.schedule(row);
    return {
      outcome: "refreshed",
      generation: row.generation,
      expiresAt: row.expiresAt?.toISOString() ?? null,
    };
  }

  /**
   * A gateway asked for a fresh token (`refresh_requested`). Creates the credential row of a
   * client-credentials upstream on first use; enqueues one refresh per stale generation.
   */
  async requestRefresh(
    event: Extract<CredentialEvent, { type: "refresh_requested" }>,
  ): Promise<{ jobId: string } | null> {
    const upstream = await this.prisma.upstream.findFirst({
      where: { id: event.upstreamId, tenantId: event.tenantId },
    });
    if (!upstream) return null;
    let cred = await this.prisma.upstreamCredential.findUnique({
      where: { upstreamId_subject: { upstreamId: upstream.id, subject: event.subject } },
    });
    const grant = oauthGrantOf(upstream.authMode, readOAuthAuthConfig(upstream.authConfig));
    if (!cred) {
      // Only client credentials can be obtained without a person.
      if (grant !== "client_credentials" || event.subject !== "") return null;
      cred = await this.ensureCredentialRow(upstream, "");
    }
    if (cred.status === "needs_reconnect") {
      // Tell the waiting gateway now instead of letting it time out.
      await this.publish({
        type: "needs_reconnect",
        tenantId: cred.tenantId,
        upstreamId: cred.upstreamId,
        subject: cred.subject,
        credentialId: cred.id,
        reason: cred.lastRefreshError ?? "needs to be reconnected",
      });
      return null;
    }
    if (event.staleGeneration !== null && cred.generation > event.staleGeneration) {
      await this.announceUpdated(cred); // already refreshed: wake the requester
      return null;
    }
    return this.enqueueNow(cred);
  }

  /**
   * Enqueues an immediate refresh of the credential's current generation. Requests for the same
   * stale token within 30 s make one job; `fresh` (an admin's request, a retry after a fix) always
   * makes a new one.
   */
  async enqueueNow(
    cred: Pick<UpstreamCredential, "id" | "generation">,
    opts: { fresh?: boolean } = {},
  ): Promise<{ jobId: string }> {
    const jobId = opts.fresh
      ? `retry.${cred.id}.${cred.generation}.${Date.now()}`
      : `now.${cred.id}.${cred.generation}.${Math.floor(Date.now() / ON_DEMAND_BUCKET_MS)}`;
    await this.jobs.enqueue(
      CredentialRefreshJob,
      { credentialId: cred.id, generation: cred.generation },
      { jobId, group: credentialGroup(cred.id) },
    );
    return { jobId };
  }

  /** The shared credential row of a client-credentials upstream, created empty if missing. */
  async ensureCredentialRow(
    upstream: Pick<Upstream, "id" | "tenantId">,
    subject: string,
  ): Promise<UpstreamCredential> {
    return this.prisma.upstreamCredential.upsert({
      where: { upstreamId_subject: { upstreamId: upstream.id, subject } },
      create: { tenantId: upstream.tenantId, upstreamId: upstream.id, subject, generation: 0 },
      update: {},
    });
  }

  /** Schedules the refresh of this generation before it expires (idempotent). */
  async schedule(
    row: Pick<
      UpstreamCredential,
      "id" | "generation" | "expiresAt" | "lastRefreshAt" | "updatedAt" | "status"
    >,
  ): Promise<void> {
    if (!row.expiresAt || row.status === "needs_reconnect") return;
    const issuedAt = (row.lastRefreshAt ?? row.updatedAt).getTime();
    const delayMs = Math.max(0, refreshAt(issuedAt, row.expiresAt.getTime()) - Date.now());
    await this.jobs.enqueue(
      CredentialRefreshJob,
      { credentialId: row.id, generation: row.generation },
      { jobId: `sched.${row.id}.${row.generation}`, delayMs, group: credentialGroup(row.id) },
    );
  }

  /** Back to active after an admin fixed the cause (e.g. an OAuth client's secret), and retry now. */
  async retryNeedsReconnect(where: { upstreamIds: string[] }): Promise<number> {
    const rows = await this.prisma.upstreamCredential.findMany({
      where: { upstreamId: { in: where.upstreamIds }, status: "needs_reconnect" },
    });
    for (const row of rows) {
      const reset = await this.prisma.upstreamCredential.update({
        where: { id: row.id },
        data: { status: row.accessTokenSealed ? "active" : "error", refreshLeaseUntil: null },
      });
      // Only a credential that can be refreshed without a person comes back by itself.
      if (row.refreshTokenSealed || !row.accessTokenSealed) await this.enqueueNow(reset, { fresh: true });
    }
    return rows.length;
  }

  /**
   * The upstreams' destination changed (an upstream's url, its OAuth client's token endpoint or
   * issuer): every token obtained for the old one is deleted, gateways are told to drop them, and
   * connect flows under way are void, so nothing is ever sent to the new destination. Runs before
   * the change is stored. A reconcile then gets client-credentials tokens from the new destination;
   * people reconnect their accounts (`UPSTREAM_AUTH_REQUIRED` with a link). Returns how many were deleted.
   */
  async forgetDestination(tenantId: string, upstreamIds: string[]): Promise<number> {
    if (upstreamIds.length === 0) return 0;
    const rows = await this.prisma.upstreamCredential.findMany({
      where: { tenantId, upstreamId: { in: upstreamIds } },
      select: { id: true, tenantId: true, upstreamId: true, subject: true },
    });
    await this.prisma.oAuthState.deleteMany({ where: { upstreamId: { in: upstreamIds } } });
    for (const row of rows) await this.remove(row);
    if (rows.length > 0) {
      await this.jobs
        .enqueue(ReconcileJob, { tenantId }, { jobId: `destination.${tenantId}.${Date.now()}` })
        .catch((err: unknown) => this.log.warn({ err, tenantId }, "could not queue a reconcile"));
    }
    return rows.length;
  }

  /** Deletes a credential (disconnect) and tells the gateways. */
  async remove(cred: Pick<UpstreamCredential, "id" | "tenantId" | "upstreamId" | "subject">): Promise<void> {
    await this.prisma.upstreamCredential.deleteMany({ where: { id: cred.id } });
    await this.publish({
      type: "deleted",
      tenantId: cred.tenantId,
      upstreamId: cred.upstreamId,
      subject: cred.subject,
      credentialId: cred.id,
    });
  }

  /** A credential as the API shows it, with its jobs. Never a token. */
  async view(cred: UpstreamCredential): Promise<UpstreamCredentialView> {
    return {
      id: cred.id,
      subject: cred.subject,
      status: cred.status,
      hasRefreshToken: cred.refreshTokenSealed !== null,
      scope: cred.scope,
      expiresAt: cred.expiresAt?.toISOString() ?? null,
      generation: cred.generation,
      lastRefreshAt: cred.lastRefreshAt?.toISOString() ?? null,
      lastRefreshError: cred.lastRefreshError,
      failureCount: cred.failureCount,
      // Reconnect links go only to the principal itself (in its UPSTREAM_AUTH_REQUIRED answer):
      // a link listed here could bind whoever opens it to someone else's credential.
      connectUrl: null,
      jobs: (await this.jobs.listGroup(credentialGroup(cred.id), 10)) as unknown as Array<
        Record<string, unknown>
      >,
      createdAt: cred.createdAt.toISOString(),
      updatedAt: cred.updatedAt.toISOString(),
    };
  }

  private async requestTokens(
    cred: CredentialWithUpstream,
    grant: "client_credentials" | "authorization_code",
  ) {
    let upstream: Upstream = cred.upstream;
    let client = cred.upstream.oauthClient;
    if (upstream.authMode === "mcp-oauth") ({ upstream, client } = await this.mcp.ensure(cred.upstream));
    if (!client) {
      throw new PermanentCredentialError(
        `Upstream ${upstream.name} has no OAuth client; set auth.oauthClient (or connect it again for mcp-oauth)`,
      );
    }
    const config = await this.servers.configuration(client);
    const params = tokenRequestParams(upstream, client);
    if (grant === "client_credentials") {
      const scopes = scopesFor(upstream, client);
      return toTokenSet(
        await oidc.clientCredentialsGrant(config, {
          ...params,
          ...(scopes.length ? { scope: scopes.join(" ") } : {}),
        }),
      );
    }
    if (!cred.refreshTokenSealed) {
      throw new PermanentCredentialError(
        "The authorization server issued no refresh token, and the access token expired; connect the account again",
      );
    }
    return toTokenSet(
      await oidc.refreshTokenGrant(config, this.sealer.unseal(cred.refreshTokenSealed), params),
    );
  }

  private async markNeedsReconnect(
    cred: CredentialWithUpstream,
    generation: number,
    reason: string,
  ): Promise<void> {
    const marked = await this.prisma.upstreamCredential.updateMany({
      where: { id: cred.id, generation },
      data: {
        status: "needs_reconnect",
        lastRefreshError: reason,
        failureCount: { increment: 1 },
        refreshLeaseUntil: null,
      },
    });
    if (marked.count === 0) return;
    this.metrics.needsReconnect.inc({ mode: cred.upstream.authMode });
    this.log.warn(
      {
        tenantId: cred.tenantId,
        upstream: cred.upstream.name,
        credentialId: cred.id,
        subject: cred.subject,
        reason,
      },
      "upstream credential needs to be reconnected",
    );
    await this.prisma.auditEvent
      .create({
        data: {
          tenantId: cred.tenantId,
          kind: "admin",
          actor: "worker",
          upstream: cred.upstream.name,
          outcome: "needs_reconnect",
          details: {
            event: "upstream_credential.needs_reconnect",
            credentialId: cred.id,
            subject: cred.subject,
            reason,
          },
        },
      })
      .catch((err: unknown) => this.log.error({ err }, "could not write the needs_reconnect audit event"));
    await this.publish({
      type: "needs_reconnect",
      tenantId: cred.tenantId,
      upstreamId: cred.upstreamId,
      subject: cred.subject,
      credentialId: cred.id,
      reason,
    });
  }

  private async recordTransientFailure(
    cred: CredentialWithUpstream,
    generation: number,
    reason: string,
  ): Promise<void> {
    const expired = cred.expiresAt !== null && cred.expiresAt.getTime() <= Date.now();
    await this.prisma.upstreamCredential.updateMany({
      where: { id: cred.id, generation },
      data: {
        status: expired || !cred.accessTokenSealed ? "error" : "active",
        lastRefreshError: reason,
        failureCount: { increment: 1 },
        refreshLeaseUntil: null,
      },
    });
    this.log.warn(
      { tenantId: cred.tenantId, upstream: cred.upstream.name, credentialId: cred.id, reason },
      "upstream token refresh failed; retrying with backoff",
    );
    await this.publish({
      type: "failed",
      tenantId: cred.tenantId,
      upstreamId: cred.upstreamId,
      subject: cred.subject,
      credentialId: cred.id,
      reason,
    });
  }

  private async whySkipped(credentialId: string, generation: number): Promise<string> {
    const row = await this.prisma.upstreamCredential.findUnique({ where: { id: credentialId } });
    if (!row) return "credential deleted";
    if (row.generation !== generation) return `already at generation ${row.generation}`;
    if (row.status === "needs_reconnect") return "needs reconnect";
    return "another worker is refreshing it";
  }

  private announceUpdated(row: UpstreamCredential): Promise<void> {
    return this.publish({
      type: "updated",
      tenantId: row.tenantId,
      upstreamId: row.upstreamId,
      subject: row.subject,
      credentialId: row.id,
      generation: row.generation,
      expiresAt: row.expiresAt?.toISOString() ?? null,
    });
  }

  private async publish(event: CredentialEvent): Promise<void> {
    try {
      await this.bus.publish(BusChannel.credentials, event);
    } catch (err) {
      // Gateways also re-read the row when waiting: a lost message only costs latency.
      this.log.warn(
        { err, type: event.type, credentialId: "credentialId" in event ? event.credentialId : null },
        "credential event not published",
      );
    }
  }
}

/** A failure of our own configuration that no retry fixes. */
export class PermanentCredentialError extends AppError {
  readonly failure: OAuthFailure;
  constructor(message: string) {
    super(ErrorCode.UPSTREAM_AUTH_REQUIRED, message);
    this.failure = { permanent: true, code: null, message };
  }
}
