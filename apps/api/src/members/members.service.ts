import type { Member, PrismaClient } from "@gatehouse/db";
import {
  AppError,
  ErrorCode,
  type MemberCreate,
  type MemberRole,
  type MemberUpdate,
  type MemberView,
  type Page,
  type PaginationQuery,
} from "@gatehouse/shared";
import { Inject, Injectable } from "@nestjs/common";
import { SessionsService } from "../auth/sessions.service.js";
import { type Caller, describeCaller } from "../common/caller.js";
import { iso, isUuid, pageArgs, toPage } from "../common/pagination.js";
import { roleAtLeast, TenantAccessService } from "../common/tenant-access.service.js";
import { PRISMA } from "../common/tokens.js";

/**
 * Members of a tenant: people invited by email with a role. An invitation binds to a user on that
 * person's first sign-in with the invited, verified email (see AuthService), or at once when such
 * a user already exists. A caller can neither grant nor touch a role above its own, and a tenant
 * that has an owner keeps at least one.
 */
@Injectable()
export class MembersService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(TenantAccessService) private readonly access: TenantAccessService,
    @Inject(SessionsService) private readonly sessions: SessionsService,
  ) {}

  async list(caller: Caller, ref: string, query: PaginationQuery): Promise<Page<MemberView>> {
    const tenant = await this.access.resolve(caller, ref, "read");
    const args = pageArgs(query);
    const rows = await this.prisma.member.findMany({
      ...args,
      where: { ...args.where, tenantId: tenant.id },
    });
    return toPage(rows, query, view);
  }

  async create(caller: Caller, ref: string, body: MemberCreate): Promise<MemberView> {
    const { tenant, role } = await this.access.resolveAccess(caller, ref, "write");
    this.checkGrant(role, body.role);
    const existing = await this.prisma.member.findUnique({
      where: { tenantId_email: { tenantId: tenant.id, email: body.email } },
    });
    if (existing) throw new AppError(ErrorCode.CONFLICT, `${body.email} is already a member of this tenant`);
    // A user who already signed in with this verified email joins at once.
    const user = await this.prisma.user.findFirst({ where: { email: body.email }, select: { id: true } });
    const bound = user
      ? await this.prisma.member.findUnique({
          where: { tenantId_userId: { tenantId: tenant.id, userId: user.id } },
          select: { id: true },
        })
      : null;
    const row = await this.prisma.member.create({
      data: {
        tenantId: tenant.id,
        email: body.email,
        name: body.name,
        role: body.role,
        invitedBy: describeCaller(caller),
        ...(user && !bound ? { userId: user.id, joinedAt: new Date() } : {}),
      },
    });
    return view(row);
  }

  async update(caller: Caller, ref: string, id: string, body: MemberUpdate): Promise<MemberView> {
    const { tenant, role } = await this.access.resolveAccess(caller, ref, "write");
    const member = await this.find(tenant.id, id);
    this.checkGrant(role, member.role);
    if (body.role) {
      this.checkGrant(role, body.role);
      if (member.role === "owner" && body.role !== "owner") await this.keepAnOwner(tenant.id, member.id);
    }
    const row = await this.prisma.member.update({
      where: { id: member.id },
      data: { role: body.role, name: body.name },
    });
    return view(row);
  }

  /** Removes the member and ends every console session of theirs at once. */
  async remove(caller: Caller, ref: string, id: string): Promise<void> {
    const { tenant, role } = await this.access.resolveAccess(caller, ref, "write");
    const member = await this.find(tenant.id, id);
    this.checkGrant(role, member.role);
    if (member.role === "owner") await this.keepAnOwner(tenant.id, member.id);
    await this.prisma.member.delete({ where: { id: member.id } });
    if (member.userId) await this.sessions.endAll(member.userId);
  }

  private async find(tenantId: string, id: string): Promise<Member> {
    const member = isUuid(id) ? await this.prisma.member.findFirst({ where: { id, tenantId } }) : null;
    if (!member) throw new AppError(ErrorCode.NOT_FOUND, `Member '${id}' not found`);
    return member;
  }

  private checkGrant(callerRole: MemberRole | null, role: MemberRole): void {
    if (callerRole && !roleAtLeast(callerRole, role)) {
      throw new AppError(
        ErrorCode.FORBIDDEN,
        `With the ${callerRole} role you cannot grant or change the ${role} role; ask an owner`,
      );
    }
  }

  private async keepAnOwner(tenantId: string, leaving: string): Promise<void> {
    const others = await this.prisma.member.count({
      where: { tenantId, role: "owner", id: { not: leaving } },
    });
    if (others === 0) {
      throw new AppError(
        ErrorCode.CONFLICT,
        "This is the tenant's last owner: make another member owner first",
      );
    }
  }
}

function view(m: Member): MemberView {
  return {
    id: m.id,
    email: m.email,
    name: m.name,
    role: m.role,
    status: m.userId ? "active" : "invited",
    userId: m.userId,
    joinedAt: iso(m.joinedAt),
    createdAt: iso(m.createdAt),
  };
}
