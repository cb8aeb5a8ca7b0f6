import type { AuditEvent, Prisma, PrismaClient } from "@gatehouse/db";
import type { AuditEventView, AuditQuery, Page } from "@gatehouse/shared";
import { Inject, Injectable } from "@nestjs/common";
import type { Caller } from "../common/caller.js";
import { iso } from "../common/pagination.js";
import { TenantAccessService } from "../common/tenant-access.service.js";
import { PRISMA } from "../common/tokens.js";

/**
 * The audit log of a tenant, newest first. Ordered by `at` (when it happened; gateways write
 * tool calls in batches, so ids do not follow `at` across nodes), ties broken by id; the cursor is
 * the `(at, id)` of the last item.
 */
@Injectable()
export class AuditService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(TenantAccessService) private readonly access: TenantAccessService,
  ) {}

  async list(caller: Caller, ref: string, q: AuditQuery): Promise<Page<AuditEventView>> {
    const tenant = await this.access.resolve(caller, ref, "read");
    const and: Prisma.AuditEventWhereInput[] = [];
    if (q.cursor) {
      const { at, id } = decodeCursor(q.cursor);
      and.push({ OR: [{ at: { lt: at } }, { at, id: { lt: id } }] });
    }
    if (q.action) {
      and.push({
        OR: ACTION_KEYS.map((key) => ({ details: { path: [key], equals: q.action } })),
      });
    }
    const rows = await this.prisma.auditEvent.findMany({
      where: {
        tenantId: tenant.id,
        kind: q.kind,
        actor: q.actor,
        agent: q.agent,
        upstream: q.upstream,
        tool: q.tool,
        decision: q.decision,
        outcome: q.outcome,
        ...(q.since || q.until ? { at: { gte: q.since, lt: q.until } } : {}),
        ...(and.length > 0 ? { AND: and } : {}),
      },
      orderBy: [{ at: "desc" }, { id: "desc" }],
      take: q.limit + 1,
    });
    const more = rows.length > q.limit;
    const items = more ? rows.slice(0, q.limit) : rows;
    const last = items.at(-1);
    return { items: items.map(view), nextCursor: more && last ? encodeCursor(last) : null };
  }
}

// Events the API records name their action `action`; those the OAuth workers record, `event`.
const ACTION_KEYS = ["action", "event"] as const;

function encodeCursor(row: AuditEvent): string {
  return `${row.at.getTime()}.${row.id}`;
}

/** The query schema has checked the shape (`<epoch ms>.<uuid>`). */
function decodeCursor(cursor: string): { at: Date; id: string } {
  const dot = cursor.indexOf(".");
  return { at: new Date(Number(cursor.slice(0, dot))), id: cursor.slice(dot + 1) };
}

function view(e: AuditEvent): AuditEventView {
  const details =
    e.details && typeof e.details === "object" && !Array.isArray(e.details)
      ? (e.details as Record<string, unknown>)
      : {};
  return {
    id: e.id,
    at: iso(e.at),
    kind: e.kind,
    actor: e.actor,
    action: e.kind === "admin" ? actionOf(details) : null,
    agent: e.agent,
    upstream: e.upstream,
    tool: e.tool,
    decision: e.decision,
    ruleId: e.ruleId,
    outcome: e.outcome,
    latencyMs: e.latencyMs,
    requestId: e.requestId,
    details,
  };
}

function actionOf(details: Record<string, unknown>): string | null {
  for (const key of ACTION_KEYS) {
    const value = details[key];
    if (typeof value === "string") return value;
  }
  return null;
}
