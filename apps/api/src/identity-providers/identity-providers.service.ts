import type { IdentityProvider, PrismaClient } from "@gatehouse/db";
import {
  AppError,
  type ClaimMapping,
  ErrorCode,
  type IdentityProviderCreate,
  type IdentityProviderUpdate,
  type IdentityProviderView,
  type Page,
  type PaginationQuery,
} from "@gatehouse/shared";
import { Inject, Injectable } from "@nestjs/common";
import type { Caller } from "../common/caller.js";
import { ConfigVersionService } from "../common/config-version.service.js";
import { iso, isUuid, pageArgs, toPage } from "../common/pagination.js";
import { TenantAccessService } from "../common/tenant-access.service.js";
import { PRISMA } from "../common/tokens.js";
import { discoverJwksUri } from "./oidc-discovery.js";

@Injectable()
export class IdentityProvidersService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(TenantAccessService) private readonly access: TenantAccessService,
    @Inject(ConfigVersionService) private readonly versions: ConfigVersionService,
  ) {}

  async create(caller: Caller, ref: string, body: IdentityProviderCreate): Promise<IdentityProviderView> {
    const tenant = await this.access.resolve(caller, ref, "write");
    const jwksUri = body.jwksUri ?? (await discoverJwksUri(body.issuer));
    const row = await this.versions.write(tenant.id, (tx) =>
      tx.identityProvider.create({
        data: {
          tenantId: tenant.id,
          name: body.name,
          issuer: body.issuer,
          audiences: body.audiences ?? [],
          jwksUri,
          roleClaim: body.roleClaim ?? null,
          claimMappings: body.claimMappings ?? [],
        },
      }),
    );
    return view(row);
  }

  async list(caller: Caller, ref: string, query: PaginationQuery): Promise<Page<IdentityProviderView>> {
    const tenant = await this.access.resolve(caller, ref, "read");
    const args = pageArgs(query);
    const rows = await this.prisma.identityProvider.findMany({
      ...args,
      where: { ...args.where, tenantId: tenant.id },
    });
    return toPage(rows, query, view);
  }

  async get(caller: Caller, ref: string, id: string): Promise<IdentityProviderView> {
    const tenant = await this.access.resolve(caller, ref, "read");
    return view(await this.find(tenant.id, id));
  }

  /** A new issuer without a jwksUri, or `jwksUri: null`, rediscovers the JWKS URI. */
  async update(
    caller: Caller,
    ref: string,
    id: string,
    patch: IdentityProviderUpdate,
  ): Promise<IdentityProviderView> {
    const tenant = await this.access.resolve(caller, ref, "write");
    const existing = await this.find(tenant.id, id);
    const issuer = patch.issuer ?? existing.issuer;
    let jwksUri = patch.jwksUri;
    if (
      jwksUri === null ||
      (jwksUri === undefined && patch.issuer !== undefined && patch.issuer !== existing.issuer)
    ) {
      jwksUri = await discoverJwksUri(issuer);
    }
    const row = await this.versions.write(tenant.id, async (tx) => {
      const { count } = await tx.identityProvider.updateMany({
        where: { id, tenantId: tenant.id },
        data: {
          name: patch.name,
          issuer: patch.issuer,
          audiences: patch.audiences,
          jwksUri,
          roleClaim: patch.roleClaim,
          claimMappings: patch.claimMappings,
        },
      });
      if (count === 0) throw notFound(id);
      return tx.identityProvider.findUniqueOrThrow({ where: { id } });
    });
    return view(row);
  }

  async remove(caller: Caller, ref: string, id: string): Promise<void> {
    const tenant = await this.access.resolve(caller, ref, "write");
    if (!isUuid(id)) throw notFound(id);
    await this.versions.write(tenant.id, async (tx) => {
      const { count } = await tx.identityProvider.deleteMany({ where: { id, tenantId: tenant.id } });
      if (count === 0) throw notFound(id);
    });
  }

  private async find(tenantId: string, id: string): Promise<IdentityProvider> {
    const row = isUuid(id) ? await this.prisma.identityProvider.findFirst({ where: { id, tenantId } }) : null;
    if (!row) throw notFound(id);
    return row;
  }
}

function notFound(id: string): AppError {
  return new AppError(ErrorCode.NOT_FOUND, `Identity provider '${id}' not found`);
}

function view(p: IdentityProvider): IdentityProviderView {
  return {
    id: p.id,
    name: p.name,
    issuer: p.issuer,
    audiences: p.audiences,
    jwksUri: p.jwksUri,
    roleClaim: p.roleClaim,
    claimMappings: Array.isArray(p.claimMappings) ? (p.claimMappings as unknown as ClaimMapping[]) : [],
    createdAt: iso(p.createdAt),
    updatedAt: iso(p.updatedAt),
  };
}
