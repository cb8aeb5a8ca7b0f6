import type { Prisma, PrismaClient } from "@gatehouse/db";
import { Inject, Injectable } from "@nestjs/common";
import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import { type Caller, describeCaller } from "../common/caller.js";
import { LOGGER, METRICS, PRISMA } from "../common/tokens.js";
import { redactSecrets } from "./admin-audit.js";

/** What the interceptor knows of an admin write before it runs. */
export interface PendingAdminEvent {
  /** e.g. `upstream.update`. */
  action: string;
  method: string;
  /** Route pattern, e.g. `/v1/tenants/:tenant/upstreams/:name`. */
  route: string;
  caller: Caller;
  /** The tenant token's name, when the caller is one. */
  callerName: string | null;
  requestId: string;
  startedAt: number;
  /** The tenant the write is scoped to (resolved from `{tenant}` before the write). */
  tenantId: string | null;
  /** The last route parameter other than `{tenant}`: the name or id in the URL. */
  ref: string | null;
  /** `{name}` of `/upstreams/{name}` routes. */
  upstreamParam: string | null;
  /** The resource before the write, as the API shows it. */
  before: unknown;
}

type View = Record<string, unknown>;
const asView = (v: unknown): View | null =>
  v && typeof v === "object" && !Array.isArray(v) ? (v as View) : null;

/** Writes admin audit events (kind `admin`) with before/after free of secrets. */
@Injectable()
export class AdminAuditService {
  private readonly failures: Counter<"action">;

  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(METRICS) registry: Registry,
  ) {
    this.failures = new Counter({
      name: "gatehouse_api_admin_audit_failures_total",
      help: "Admin changes committed whose audit event could not be written",
      labelNames: ["action"] as const,
      registers: [registry],
    });
  }

  /** Records a committed write; never throws (the write has happened, its answer must go out). */
  async record(pending: PendingAdminEvent, answer: unknown): Promise<void> {
    const before = redactSecrets(pending.before ?? null);
    const after = pending.method === "DELETE" ? null : redactSecrets(answer ?? null);
    const subject = asView(after) ?? asView(before);
    const tenantId =
      pending.action === "tenant.create" ? ((subject?.id as string) ?? null) : pending.tenantId;
    const actor = describeCaller(pending.caller);
    const details = {
      action: pending.action,
      actor:
        pending.caller.kind === "platform"
          ? { kind: "platform" }
          : pending.caller.kind === "user"
            ? {
                kind: "user",
                id: pending.caller.userId,
                name: pending.callerName,
                platformAdmin: pending.caller.platformAdmin,
              }
            : {
                kind: "token",
                id: pending.caller.tokenId,
                name: pending.callerName,
                role: pending.caller.role,
              },
      target: {
        type: pending.action.slice(0, pending.action.lastIndexOf(".")),
        id: typeof subject?.id === "string" ? subject.id : null,
        name:
          typeof subject?.name === "string"
            ? subject.name
            : typeof subject?.slug === "string"
              ? subject.slug
              : null,
        ref: pending.ref,
      },
      before,
      after,
    };
    if (pending.action === "tenant.delete") {
      // Audit events belong to their tenant and cascade away with it, so this event could not
      // outlive the delete it records: the log line is its trace.
      this.log.info(
        { reqId: pending.requestId, actor, tenantId, target: details.target },
        "admin change: tenant deleted",
      );
      return;
    }
    if (!tenantId) {
      this.log.warn(
        { reqId: pending.requestId, action: pending.action },
        "admin audit: no tenant for this change",
      );
      return;
    }
    // Filtering the audit by upstream shows its admin changes beside its tool calls.
    const upstream =
      pending.action === "upstream.create" || pending.action === "upstream.update"
        ? ((asView(after)?.name as string | undefined) ?? pending.upstreamParam)
        : pending.upstreamParam;
    try {
      await this.prisma.auditEvent.create({
        data: {
          tenantId,
          kind: "admin",
          actor,
          upstream,
          outcome: "ok",
          latencyMs: Math.round(performance.now() - pending.startedAt),
          requestId: pending.requestId,
          details: details as Prisma.InputJsonValue,
        },
      });
    } catch (err) {
      this.failures.inc({ action: pending.action });
      this.log.error(
        { err, reqId: pending.requestId, action: pending.action, tenantId },
        "admin audit: event not written",
      );
    }
  }
}
