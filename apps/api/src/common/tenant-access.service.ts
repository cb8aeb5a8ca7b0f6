import type { PrismaClient, Tenant } from "@gatehouse/db";
import { AppError, ErrorCode, type MemberRole, tenantRefWhere } from "@gatehouse/shared";
import { Inject, Injectable } from "@nestjs/common";
import type { Caller } from "./caller.js";
import { PRISMA } from "./tokens.js";

/** What a request needs to do to a tenant: `read`, change its config (`write`), or delete it (`owner`). */
export type Access = "read" | "write" | "owner";

const RANK = { viewer: 0, admin: 1, owner: 2 } as const;
const NEEDED = { read: 0, write: 1, owner: 2 } as const;

/** Whether role `a` is at least role `b`. */
export function roleAtLeast(a: MemberRole, b: MemberRole): boolean {
  return RANK[a] >= RANK[b];
}

/**
 * The one authorization model of the API, for admin tokens and console sessions alike: a caller
 * has a role in a tenant (a tenant token's own role, a member's role) or platform-wide power (the
 * platform token, a platform admin's session). Resolves `{tenant}` (slug or id) and checks the
 * caller may act on it. A tenant the caller has no place in looks as if it did not exist (404),
 * so tenants cannot be probed.
 */
@Injectable()
export class TenantAccessService {
  constructor(@Inject(PRISMA) private readonly prisma: PrismaClient) {}

  async resolve(caller: Caller, ref: string, access: Access): Promise<Tenant> {
    return (await this.resolveAccess(caller, ref, access)).tenant;
  }

  /** The tenant and the caller's role in it; `role` is null for platform-wide callers. */
  async resolveAccess(
    caller: Caller,
    ref: string,
    access: Access,
  ): Promise<{ tenant: Tenant; role: MemberRole | null }> {
    const tenant = await this.prisma.tenant.findFirst({
      where: tenantRefWhere(ref),
    });
    const role = tenant ? await this.roleIn(caller, tenant.id) : undefined;
    if (!tenant || role === undefined) {
      throw new AppError(ErrorCode.NOT_FOUND, `Tenant '${ref}' not found`);
    }
    if (role !== null && RANK[role] < NEEDED[access]) {
      const who = caller.kind === "user" ? `member with the ${role} role` : `${role} token`;
      throw new AppError(
        ErrorCode.FORBIDDEN,
        `A ${who} cannot ${access === "owner" ? "delete this tenant" : "change this tenant"}; it needs the ${access === "owner" ? "owner" : "admin"} role`,
      );
    }
    return { tenant, role };
  }

  /** null: platform-wide; undefined: no place in this tenant. */
  private async roleIn(caller: Caller, tenantId: string): Promise<MemberRole | null | undefined> {
    if (caller.kind === "platform") return null;
    if (caller.kind === "tenant") return caller.tenantId === tenantId ? caller.role : undefined;
    if (caller.platformAdmin) return null;
    const member = await this.prisma.member.findUnique({
      where: { tenantId_userId: { tenantId, userId: caller.userId } },
      select: { role: true },
    });
    return member?.role;
  }

  /** Whether the caller has platform-wide power (platform token, platform admin's session). */
  isPlatform(caller: Caller): boolean {
    return caller.kind === "platform" || (caller.kind === "user" && caller.platformAdmin);
  }

  /** Platform-wide operations (creating and listing all tenants) need platform-wide power. */
  requirePlatform(caller: Caller, what: string): void {
    if (!this.isPlatform(caller)) {
      throw new AppError(ErrorCode.FORBIDDEN, `Only a platform admin can ${what}`);
    }
  }
}
