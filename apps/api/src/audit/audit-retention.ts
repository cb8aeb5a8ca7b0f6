import type { PrismaClient } from "@gatehouse/db";
import { TenantSettingsSchema } from "@gatehouse/shared";
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from "@nestjs/common";
import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import { z } from "zod";
import { LOGGER, METRICS, PRISMA } from "../common/tokens.js";
import { defineJob, type JobRunner } from "../jobs/job.types.js";
import { JOB_RUNNER } from "../jobs/jobs.tokens.js";

const DAY_MS = 24 * 3600_000;
/** Rows per DELETE: keeps each statement short on a big audit table. */
const DELETE_BATCH = 5_000;
const TENANT_PAGE = 500;
/** How often each API process makes sure today's run is queued. */
const TICK_MS = 3600_000;
/** A day's run starts up to this long after the first process queues it. */
const START_JITTER_MS = 15 * 60_000;

/**
 * Deletes the audit events of every tenant older than its `settings.auditRetentionDays`
 * (default 30). One run a day: its id is the UTC date, so the many API processes that queue it
 * make one job, which runs once.
 */
export const AuditRetentionJob = defineJob({
  name: "audit-retention",
  payload: z.strictObject({}),
  attempts: 3,
  backoffMs: 60_000,
  timeoutMs: 30 * 60_000,
  concurrency: 1,
  // Remembered past the end of its day, so a later enqueue of the same date is a no-op.
  retainMs: 2 * DAY_MS,
});

const DEFAULT_RETENTION_DAYS = TenantSettingsSchema.parse({}).auditRetentionDays;

export interface RetentionResult {
  tenants: number;
  deleted: number;
}

@Injectable()
export class AuditRetentionService {
  private readonly deletedTotal: Counter;

  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(METRICS) registry: Registry,
  ) {
    this.deletedTotal = new Counter({
      name: "gatehouse_api_audit_retention_deleted_total",
      help: "Audit events deleted for being older than their tenant's retention",
      registers: [registry],
    });
  }

  /** One pass over every tenant; `now` is for tests. */
  async purge(opts: { now?: Date; signal?: AbortSignal } = {}): Promise<RetentionResult> {
    const now = (opts.now ?? new Date()).getTime();
    let tenants = 0;
    let deleted = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.prisma.tenant.findMany({
        where: after ? { id: { gt: after } } : {},
        orderBy: { id: "asc" },
        take: TENANT_PAGE,
        select: { id: true, settings: true },
      });
      for (const tenant of page) {
        opts.signal?.throwIfAborted();
        const cutoff = new Date(now - retentionDays(tenant.settings) * DAY_MS);
        deleted += await this.purgeTenant(tenant.id, cutoff, opts.signal);
        tenants++;
      }
      if (page.length < TENANT_PAGE) break;
      after = page.at(-1)!.id;
    }
    this.log.info({ tenants, deleted }, "audit retention: old events deleted");
    return { tenants, deleted };
  }

  private async purgeTenant(tenantId: string, cutoff: Date, signal?: AbortSignal): Promise<number> {
    let deleted = 0;
    for (;;) {
      signal?.throwIfAborted();
      const rows = await this.prisma.auditEvent.findMany({
        where: { tenantId, at: { lt: cutoff } },
        select: { id: true },
        take: DELETE_BATCH,
      });
      if (rows.length === 0) return deleted;
      const { count } = await this.prisma.auditEvent.deleteMany({
        where: { id: { in: rows.map((r) => r.id) } },
      });
      deleted += count;
      this.deletedTotal.inc(count);
      if (rows.length < DELETE_BATCH) return deleted;
    }
  }
}

function retentionDays(settings: unknown): number {
  const days = (settings as { auditRetentionDays?: unknown } | null)?.auditRetentionDays;
  return typeof days === "number" && Number.isInteger(days) && days >= 1 ? days : DEFAULT_RETENTION_DAYS;
}

/**
 * Works the retention job and queues each day's run (with a random start within
 * START_JITTER_MS, checked hourly with ±20% jitter so API processes do not wake together).
 * Runs in every API process, on BullMQ with REDIS_URL and in-process without.
 */
@Injectable()
export class AuditRetentionWorker implements OnApplicationBootstrap, OnApplicationShutdown {
  private started = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    @Inject(JOB_RUNNER) private readonly jobs: JobRunner,
    @Inject(AuditRetentionService) private readonly retention: AuditRetentionService,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.start();
  }

  async onApplicationShutdown(): Promise<void> {
    this.started = false;
    clearTimeout(this.timer);
  }

  /** Idempotent. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.jobs.work(AuditRetentionJob, (_payload, ctx) => this.retention.purge({ signal: ctx.signal }));
    const loop = () => {
      this.timer = setTimeout(
        () => {
          void this.tick().finally(() => {
            if (this.started) loop();
          });
        },
        TICK_MS * (0.8 + Math.random() * 0.4),
      );
      this.timer.unref();
    };
    await this.tick();
    loop();
  }

  /** Queues today's run unless some process already has. */
  async tick(now = new Date()): Promise<void> {
    const day = now.toISOString().slice(0, 10);
    await this.jobs
      .enqueue(
        AuditRetentionJob,
        {},
        { jobId: `day-${day}`, delayMs: Math.floor(Math.random() * START_JITTER_MS) },
      )
      .catch((err: unknown) => this.log.error({ err }, "audit retention: could not queue today's run"));
  }
}
