import type { PrismaClient, Tenant } from "@gatehouse/db";
import { AppError, ErrorCode } from "@gatehouse/shared";
import { Inject, Injectable } from "@nestjs/common";
import type { Caller } from "./caller.js";
import { isUuid } from "./pagination.js";
import { PRISMA } from "./tokens.js";

/** What a request needs to do to a tenant: `read`, change its config (`write`), or delete it (`owner`). */
export type Access = "read" | "write" | "owner";

const RANK = { viewer: 0, admin: 1, owner: 2 } as const;
const NEEDED = { read: 0, write: 1, owner: 2 } as const;

/**
 * Resolves `{tenant}` (slug or id) and checks the caller may act on it. A tenant-scoped token sees
 * other tenants as not existing (404), so tenants cannot be probed.
 */
@Injectable()
export class TenantAccessService {
  constructor(@Inject(PRISMA) private readonly prisma: PrismaClient) {}

  async resolve(caller: Caller, ref: string, access: Access): Promise<Tenant> {
    const tenant = await this.prisma.tenant.findFirst({
      where: isUuid(ref) ? { OR: [{ id: ref.toLowerCase() }, { slug: ref }] } : { slug: ref },
    });
    if (!tenant || (caller.kind === "tenant" && caller.tenantId !== tenant.id)) {
      throw new AppError(ErrorCode.NOT_FOUND, `Tenant '${ref}' not found`);
    }
    if (caller.kind === "tenant" && RANK[caller.role] < NEEDED[access]) {
      throw new AppError(
        ErrorCode.FORBIDDEN,
        `A ${caller.role} token cannot ${access === "owner" ? "delete this tenant" : "change this tenant"}; use a token with the ${access === "owner" ? "owner" : "admin"} role`,
      );
    }
    return tenant;
  }

  /** Platform-wide operations (creating and listing tenants) need the platform admin token. */
  requirePlatform(caller: Caller, what: string): void {
    if (caller.kind !== "platform") {
      throw new AppError(ErrorCode.FORBIDDEN, `Only the platform admin token can ${what}`);
    }
  }
}
