import type { ApiKey, PrismaClient } from "@gatehouse/db";
import {
  type ApiKeyCreate,
  type ApiKeyCreated,
  type ApiKeyView,
  AppError,
  ErrorCode,
  type Page,
  type PaginationQuery,
} from "@gatehouse/shared";
import { generateApiKey } from "@gatehouse/shared/node";
import { Inject, Injectable } from "@nestjs/common";
import type { Caller } from "../common/caller.js";
import { ConfigVersionService } from "../common/config-version.service.js";
import { futureDate } from "../common/expiry.js";
import { iso, isUuid, pageArgs, toPage } from "../common/pagination.js";
import { TenantAccessService } from "../common/tenant-access.service.js";
import { PRISMA } from "../common/tokens.js";

@Injectable()
export class ApiKeysService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(TenantAccessService) private readonly access: TenantAccessService,
    @Inject(ConfigVersionService) private readonly versions: ConfigVersionService,
  ) {}

  /** Mints a key; the plaintext is in this answer only, the database keeps its SHA-256 hash. */
  async create(caller: Caller, ref: string, body: ApiKeyCreate): Promise<ApiKeyCreated> {
    const tenant = await this.access.resolve(caller, ref, "write");
    const expiresAt = futureDate(body.expiresAt);
    const { key, prefix, hash } = generateApiKey();
    const row = await this.versions.write(tenant.id, (tx) =>
      tx.apiKey.create({
        data: {
          tenantId: tenant.id,
          name: body.name,
          agent: body.agent ?? null,
          roles: body.roles ?? [],
          prefix,
          hash,
          expiresAt,
          rateLimitPerMinute: body.rateLimit?.perMinute ?? null,
        },
      }),
    );
    return { ...view(row), key };
  }

  async list(caller: Caller, ref: string, query: PaginationQuery): Promise<Page<ApiKeyView>> {
    const tenant = await this.access.resolve(caller, ref, "read");
    const args = pageArgs(query);
    const rows = await this.prisma.apiKey.findMany({
      ...args,
      where: { ...args.where, tenantId: tenant.id },
    });
    return toPage(rows, query, view);
  }

  async get(caller: Caller, ref: string, id: string): Promise<ApiKeyView> {
    const tenant = await this.access.resolve(caller, ref, "read");
    const row = isUuid(id)
      ? await this.prisma.apiKey.findFirst({ where: { id, tenantId: tenant.id } })
      : null;
    if (!row) throw notFound(id);
    return view(row);
  }

  /** Revokes by deleting: the bumped config version makes every gateway drop the key. */
  async revoke(caller: Caller, ref: string, id: string): Promise<void> {
    const tenant = await this.access.resolve(caller, ref, "write");
    if (!isUuid(id)) throw notFound(id);
    await this.versions.write(tenant.id, async (tx) => {
      const { count } = await tx.apiKey.deleteMany({ where: { id, tenantId: tenant.id } });
      if (count === 0) throw notFound(id);
    });
  }
}

function notFound(id: string): AppError {
  return new AppError(ErrorCode.NOT_FOUND, `API key '${id}' not found`);
}

function view(k: ApiKey): ApiKeyView {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    agent: k.agent,
    roles: k.roles,
    expiresAt: iso(k.expiresAt),
    rateLimit: k.rateLimitPerMinute === null ? null : { perMinute: k.rateLimitPerMinute },
    lastUsedAt: iso(k.lastUsedAt),
    createdAt: iso(k.createdAt),
  };
}
