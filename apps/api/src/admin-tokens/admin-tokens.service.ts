import type { AdminToken, PrismaClient } from "@gatehouse/db";
import {
  type AdminTokenCreate,
  type AdminTokenCreated,
  type AdminTokenView,
  AppError,
  ErrorCode,
  type Page,
  type PaginationQuery,
} from "@gatehouse/shared";
import { generateAdminToken } from "@gatehouse/shared/node";
import { Inject, Injectable } from "@nestjs/common";
import type { Caller } from "../common/caller.js";
import { futureDate } from "../common/expiry.js";
import { iso, isUuid, pageArgs, toPage } from "../common/pagination.js";
import { TenantAccessService } from "../common/tenant-access.service.js";
import { PRISMA } from "../common/tokens.js";

const RANK = { viewer: 0, admin: 1, owner: 2 } as const;

/**
 * Tenant-scoped admin tokens (`mgt_…`) for the REST API. Gateways never see them, so these
 * writes do not bump the config version.
 */
@Injectable()
export class AdminTokensService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(TenantAccessService) private readonly access: TenantAccessService,
  ) {}

  async create(caller: Caller, ref: string, body: AdminTokenCreate): Promise<AdminTokenCreated> {
    const { tenant, role: callerRole } = await this.access.resolveAccess(caller, ref, "write");
    const role = body.role ?? "admin";
    if (callerRole && RANK[role] > RANK[callerRole]) {
      throw new AppError(
        ErrorCode.FORBIDDEN,
        `A caller with the ${callerRole} role cannot create a token with the ${role} role`,
      );
    }
    const expiresAt = futureDate(body.expiresAt);
    const { key, prefix, hash } = generateAdminToken();
    const row = await this.prisma.adminToken.create({
      data: { tenantId: tenant.id, name: body.name, role, prefix, hash, expiresAt },
    });
    return { ...view(row), token: key };
  }

  async list(caller: Caller, ref: string, query: PaginationQuery): Promise<Page<AdminTokenView>> {
    const tenant = await this.access.resolve(caller, ref, "read");
    const args = pageArgs(query);
    const rows = await this.prisma.adminToken.findMany({
      ...args,
      where: { ...args.where, tenantId: tenant.id },
    });
    return toPage(rows, query, view);
  }

  /** Revokes at once: the next request with it is refused. */
  async revoke(caller: Caller, ref: string, id: string): Promise<void> {
    const tenant = await this.access.resolve(caller, ref, "write");
    const { count } = isUuid(id)
      ? await this.prisma.adminToken.deleteMany({ where: { id, tenantId: tenant.id } })
      : { count: 0 };
    if (count === 0) throw new AppError(ErrorCode.NOT_FOUND, `Token '${id}' not found`);
  }
}

function view(t: AdminToken): AdminTokenView {
  return {
    id: t.id,
    name: t.name,
    role: t.role,
    prefix: t.prefix,
    expiresAt: iso(t.expiresAt),
    lastUsedAt: iso(t.lastUsedAt),
    createdAt: iso(t.createdAt),
  };
}
