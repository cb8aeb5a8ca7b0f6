import type { PrismaClient, Tenant } from "@gatehouse/db";
import {
  type Page,
  type TenantCreate,
  type TenantListQuery,
  TenantSettingsSchema,
  type TenantUpdate,
  type TenantView,
} from "@gatehouse/shared";
import { Inject, Injectable } from "@nestjs/common";
import type { Caller } from "../common/caller.js";
import { ConfigVersionService } from "../common/config-version.service.js";
import { iso, pageArgs, toPage } from "../common/pagination.js";
import { TenantAccessService } from "../common/tenant-access.service.js";
import { API_CONFIG, PRISMA } from "../common/tokens.js";
import { validate } from "../common/validation.js";
import type { ApiConfig } from "../config/api.config.js";

@Injectable()
export class TenantsService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    @Inject(TenantAccessService) private readonly access: TenantAccessService,
    @Inject(ConfigVersionService) private readonly versions: ConfigVersionService,
  ) {}

  async create(caller: Caller, body: TenantCreate): Promise<TenantView> {
    this.access.requirePlatform(caller, "create tenants");
    const settings = mergeSettings({}, body.settings);
    const tenant = await this.prisma.tenant.create({ data: { slug: body.slug, name: body.name, settings } });
    // Nothing to bump yet, but a gateway that cached "no such tenant" learns it exists now.
    await this.versions.announce({ tenantId: tenant.id, version: tenant.configVersion });
    return this.view(tenant);
  }

  async list(caller: Caller, query: TenantListQuery): Promise<Page<TenantView>> {
    // A console member lists the tenants they belong to; everyone else needs platform power.
    const memberOf = caller.kind === "user" && !caller.platformAdmin ? caller.userId : undefined;
    if (!memberOf) this.access.requirePlatform(caller, "list tenants");
    const args = pageArgs(query);
    const rows = await this.prisma.tenant.findMany({
      ...args,
      where: {
        ...args.where,
        ...(memberOf ? { members: { some: { userId: memberOf } } } : {}),
        ...(query.q
          ? {
              OR: [
                { slug: { contains: query.q, mode: "insensitive" as const } },
                { name: { contains: query.q, mode: "insensitive" as const } },
              ],
            }
          : {}),
      },
    });
    return toPage(rows, query, (t) => this.view(t));
  }

  async get(caller: Caller, ref: string): Promise<TenantView> {
    return this.view(await this.access.resolve(caller, ref, "read"));
  }

  async update(caller: Caller, ref: string, body: TenantUpdate): Promise<TenantView> {
    const tenant = await this.access.resolve(caller, ref, "write");
    const settings = body.settings === undefined ? undefined : mergeSettings(tenant.settings, body.settings);
    const updated = await this.versions.write(tenant.id, (tx) =>
      tx.tenant.update({
        where: { id: tenant.id },
        data: { slug: body.slug, name: body.name, settings },
      }),
    );
    return this.view(updated);
  }

  async remove(caller: Caller, ref: string): Promise<void> {
    const tenant = await this.access.resolve(caller, ref, "owner");
    await this.versions.deleteTenant(tenant.id);
  }

  view(t: Tenant): TenantView {
    return {
      id: t.id,
      slug: t.slug,
      name: t.name,
      gatewayUrl: `${this.config.PUBLIC_GATEWAY_URL}/t/${t.slug}/mcp`,
      settings: TenantSettingsSchema.parse(t.settings ?? {}),
      configVersion: t.configVersion,
      createdAt: iso(t.createdAt),
      updatedAt: iso(t.updatedAt),
    };
  }
}

/** Stored settings with a patch applied, defaults filled in, checked as a whole. */
function mergeSettings(stored: unknown, patch: object | undefined) {
  const base = stored && typeof stored === "object" && !Array.isArray(stored) ? stored : {};
  const merged = {
    ...base,
    ...Object.fromEntries(Object.entries(patch ?? {}).filter(([, v]) => v !== undefined)),
  };
  return validate(TenantSettingsSchema, merged, "settings");
}
