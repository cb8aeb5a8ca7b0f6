import type { OAuthClient, Prisma, PrismaClient } from "@gatehouse/db";
import {
  AppError,
  ErrorCode,
  type OAuthClientCreate,
  type OAuthClientUpdate,
  type OAuthClientView,
  oauthClientErrors,
  type Page,
  type PaginationQuery,
} from "@gatehouse/shared";
import type { Sealer } from "@gatehouse/shared/node";
import { Inject, Injectable } from "@nestjs/common";
import type { Caller } from "../common/caller.js";
import { iso, pageArgs, toPage } from "../common/pagination.js";
import { TenantAccessService } from "../common/tenant-access.service.js";
import { PRISMA, SEALER } from "../common/tokens.js";
import { CredentialsService } from "../oauth/credentials.service.js";
import { OAUTH_SERVERS } from "../oauth/oauth.tokens.js";
import type { OAuthServers } from "../oauth/oauth-servers.js";
import { oauthClientRef } from "../oauth/upstream-auth.js";

type ClientWithUpstreams = OAuthClient & { upstreams: Array<{ name: string }> };

const withUpstreams = { upstreams: { select: { name: true }, orderBy: { name: "asc" as const } } };

/**
 * The client registrations Gatehouse uses toward upstream authorization servers. The issuer is
 * checked by discovery when set; the secret is sealed and never returned.
 */
@Injectable()
export class OAuthClientsService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(SEALER) private readonly sealer: Sealer,
    @Inject(TenantAccessService) private readonly access: TenantAccessService,
    @Inject(OAUTH_SERVERS) private readonly servers: OAuthServers,
    @Inject(CredentialsService) private readonly credentials: CredentialsService,
  ) {}

  async create(caller: Caller, ref: string, body: OAuthClientCreate): Promise<OAuthClientView> {
    const tenant = await this.access.resolve(caller, ref, "write");
    await this.checkServer(body);
    const row = await this.prisma.oAuthClient.create({
      data: {
        tenantId: tenant.id,
        name: body.name,
        issuer: body.issuer ?? null,
        authorizationEndpoint: body.authorizationEndpoint ?? null,
        tokenEndpoint: body.tokenEndpoint ?? null,
        clientId: body.clientId,
        clientSecretSealed: body.clientSecret ? this.sealer.seal(body.clientSecret) : null,
        authMethod: body.authMethod ?? "client_secret_basic",
        scopes: body.scopes ?? [],
        extraParams: body.extraParams ?? {},
      },
      include: withUpstreams,
    });
    return view(row);
  }

  async list(caller: Caller, ref: string, query: PaginationQuery): Promise<Page<OAuthClientView>> {
    const tenant = await this.access.resolve(caller, ref, "read");
    const args = pageArgs(query);
    const rows = await this.prisma.oAuthClient.findMany({
      ...args,
      where: { ...args.where, tenantId: tenant.id },
      include: withUpstreams,
    });
    return toPage(rows, query, view);
  }

  async get(caller: Caller, ref: string, idOrName: string): Promise<OAuthClientView> {
    const tenant = await this.access.resolve(caller, ref, "read");
    return view(await this.find(tenant.id, idOrName));
  }

  /**
   * Only the fields sent change; `clientSecret: null` removes the secret. Credentials that failed
   * permanently with this client are retried at once (the fix may be exactly this change).
   */
  async update(
    caller: Caller,
    ref: string,
    idOrName: string,
    patch: OAuthClientUpdate,
  ): Promise<OAuthClientView> {
    const tenant = await this.access.resolve(caller, ref, "write");
    const existing = await this.find(tenant.id, idOrName);
    const merged = {
      issuer: patch.issuer === undefined ? existing.issuer : patch.issuer,
      tokenEndpoint: patch.tokenEndpoint === undefined ? existing.tokenEndpoint : patch.tokenEndpoint,
      authorizationEndpoint:
        patch.authorizationEndpoint === undefined
          ? existing.authorizationEndpoint
          : patch.authorizationEndpoint,
      authMethod: patch.authMethod ?? existing.authMethod,
      clientSecret: patch.clientSecret,
    };
    const errors = oauthClientErrors(
      merged,
      patch.clientSecret === undefined && existing.clientSecretSealed !== null,
    );
    // Where the client secret and refresh tokens are sent: the token endpoint, given or discovered
    // from the issuer. When it changes, the secret must be sent again and the tokens are dropped.
    const destinationChanges =
      (patch.issuer !== undefined && patch.issuer !== existing.issuer) ||
      (patch.tokenEndpoint !== undefined && patch.tokenEndpoint !== existing.tokenEndpoint);
    if (destinationChanges && existing.clientSecretSealed !== null && patch.clientSecret === undefined) {
      errors.push({
        path: "clientSecret",
        message:
          "The issuer or token endpoint changes, and the stored secret is never sent to a new destination: send clientSecret again (or null to remove it)",
      });
    }
    if (errors.length) {
      throw new AppError(
        ErrorCode.VALIDATION_FAILED,
        `Invalid request body: check ${errors.map((e) => e.path).join(", ")}`,
        errors,
      );
    }
    if (
      patch.issuer !== undefined ||
      patch.tokenEndpoint !== undefined ||
      patch.authorizationEndpoint !== undefined
    ) {
      await this.checkServer(merged);
    }
    if (destinationChanges) {
      await this.credentials.forgetDestination(
        tenant.id,
        (
          await this.prisma.upstream.findMany({ where: { oauthClientId: existing.id }, select: { id: true } })
        ).map((u) => u.id),
      );
    }
    const data: Prisma.OAuthClientUpdateInput = {
      name: patch.name,
      issuer: patch.issuer,
      authorizationEndpoint: patch.authorizationEndpoint,
      tokenEndpoint: patch.tokenEndpoint,
      clientId: patch.clientId,
      authMethod: patch.authMethod,
      scopes: patch.scopes,
      extraParams: patch.extraParams,
      ...(patch.clientSecret === undefined
        ? {}
        : { clientSecretSealed: patch.clientSecret === null ? null : this.sealer.seal(patch.clientSecret) }),
    };
    const row = await this.prisma.oAuthClient.update({
      where: { id: existing.id },
      data,
      include: withUpstreams,
    });
    const upstreamIds = (
      await this.prisma.upstream.findMany({ where: { oauthClientId: row.id }, select: { id: true } })
    ).map((u) => u.id);
    if (upstreamIds.length) await this.credentials.retryNeedsReconnect({ upstreamIds });
    return view(row);
  }

  /** Refused while upstreams use the client: they would lose their authorization server. */
  async remove(caller: Caller, ref: string, idOrName: string): Promise<void> {
    const tenant = await this.access.resolve(caller, ref, "write");
    const existing = await this.find(tenant.id, idOrName);
    if (existing.upstreams.length) {
      throw new AppError(
        ErrorCode.CONFLICT,
        `OAuth client ${existing.name} is used by upstream(s) ${existing.upstreams.map((u) => u.name).join(", ")}; change their auth first`,
        { upstreams: existing.upstreams.map((u) => u.name) },
      );
    }
    await this.prisma.oAuthClient.deleteMany({ where: { id: existing.id, tenantId: tenant.id } });
  }

  private async find(tenantId: string, idOrName: string): Promise<ClientWithUpstreams> {
    const row = await this.prisma.oAuthClient.findFirst({
      where: oauthClientRef(tenantId, idOrName),
      include: withUpstreams,
    });
    if (!row) throw new AppError(ErrorCode.NOT_FOUND, `OAuth client '${idOrName}' not found`);
    return row;
  }

  /** Discovery must work for an issuer; explicit endpoints must be https (or allowed http). */
  private async checkServer(c: {
    issuer?: string | null;
    tokenEndpoint?: string | null;
    authorizationEndpoint?: string | null;
  }): Promise<void> {
    if (c.tokenEndpoint) this.servers.assertAllowed(c.tokenEndpoint, "token endpoint");
    if (c.authorizationEndpoint)
      this.servers.assertAllowed(c.authorizationEndpoint, "authorization endpoint");
    if (c.issuer) {
      this.servers.assertAllowed(c.issuer, "issuer");
      const meta = await this.servers.discover(c.issuer);
      if (!meta.token_endpoint && !c.tokenEndpoint) {
        throw new AppError(
          ErrorCode.UNPROCESSABLE,
          `The issuer ${c.issuer} publishes no token endpoint; give tokenEndpoint`,
        );
      }
    }
  }
}

function view(c: ClientWithUpstreams): OAuthClientView {
  return {
    id: c.id,
    name: c.name,
    issuer: c.issuer,
    authorizationEndpoint: c.authorizationEndpoint,
    tokenEndpoint: c.tokenEndpoint,
    clientId: c.clientId,
    hasClientSecret: c.clientSecretSealed !== null,
    authMethod: c.authMethod,
    scopes: c.scopes,
    extraParams: Object.fromEntries(
      Object.entries((c.extraParams ?? {}) as Record<string, unknown>).filter(
        (e): e is [string, string] => typeof e[1] === "string",
      ),
    ),
    upstreams: c.upstreams.map((u) => u.name),
    createdAt: iso(c.createdAt),
    updatedAt: iso(c.updatedAt),
  };
}
