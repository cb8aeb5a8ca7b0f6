import { createHash, randomBytes } from "node:crypto";
import type { PrismaClient } from "@gatehouse/db";
import type { GatewayMetrics } from "./metrics.js";

/**
 * One tools/call as the audit log keeps it. Structurally a superset of `ToolCallEvent` in
 * ../ports.ts, so the core's events can be passed as they are: the actor is `principalId`, or
 * else `principal.id`.
 */
export interface ToolCallEvent {
  tenantId: string;
  /** `Principal.id`: `key:<id>`, `sub:<subject>` or `anonymous`. */
  principalId?: string;
  principal?: { id: string };
  agent: string | null;
  upstream: string | null;
  tool: string | null;
  decision: "allow" | "deny" | null;
  ruleId: string | null;
  /** `ok`, `tool_error`, or the error code the caller got. */
  outcome: string;
  latencyMs: number;
  upstreamLatencyMs: number | null;
  requestId: string;
  argsSize: number;
  argsHash: string | null;
  /** Only when the tenant turned on argument capture. */
  args?: unknown;
  at: Date;
}

/** Size in bytes and SHA-256 of the JSON arguments, plus the arguments themselves when captured. */
export function summarizeArguments(
  args: unknown,
  capture: boolean,
): Pick<ToolCallEvent, "argsSize" | "argsHash" | "args"> {
  if (args === undefined) return { argsSize: 0, argsHash: null };
  const json = JSON.stringify(args) ?? "";
  const summary = {
    argsSize: Buffer.byteLength(json),
    argsHash: createHash("sha256").update(json).digest("hex"),
  };
  return capture ? { ...summary, args } : summary;
}

export interface AuditLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AuditWriterOptions {
  /** The gateway's PrismaClient (raw statements: Postgres or PGlite). */
  prisma: Pick<PrismaClient, "$executeRawUnsafe">;
  /** Events held in memory at most; when full the oldest is dropped. Default 10,000. */
  maxQueue?: number;
  /** Rows per insert. Default 100 (one JSON parameter per batch; small batches keep each flush short). */
  batchSize?: number;
  /** Write at least this often while events wait. Default 1,000 ms. */
  flushIntervalMs?: number;
  /** Longest wait between retries after a failed write. Default 30 s. */
  maxBackoffMs?: number;
  metrics?: GatewayMetrics;
  logger?: AuditLogger;
}

/**
 * Audit events off the request path. `record` never blocks or throws: it appends to a bounded
 * ring (dropping the oldest when full, counted in `gatehouse_audit_dropped_total`), and batches
 * go to the database every `flushIntervalMs` or as soon as `batchSize` are waiting. A batch
 * the database refuses for a reason that is not transient (e.g. the tenant was deleted) is
 * split to find and drop the bad rows; a transient failure puts the batch back and backs off.
 */
export class AuditWriter {
  private readonly ring: Array<ToolCallEvent | undefined>;
  private head = 0;
  private count = 0;
  private readonly batchSize: number;
  private readonly flushIntervalMs: number;
  private readonly maxBackoffMs: number;
  private timer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | null = null;
  private backoffMs = 0;
  private retryAt = 0;
  private closed = false;
  private dropped = 0;
  private written = 0;

  constructor(private readonly options: AuditWriterOptions) {
    this.ring = new Array(options.maxQueue ?? 10_000);
    this.batchSize = options.batchSize ?? 100;
    this.flushIntervalMs = options.flushIntervalMs ?? 1000;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.timer = setInterval(() => this.kick(), this.flushIntervalMs);
    this.timer.unref();
  }

  /** Queue one event. Never blocks, never throws. */
  record(event: ToolCallEvent): void {
    if (this.closed) {
      this.drop(1, "shutdown");
      return;
    }
    this.pushBack([event]);
    this.options.metrics?.auditQueued.set(this.count);
    if (this.count >= this.batchSize && !this.draining && Date.now() >= this.retryAt) this.kick();
  }

  /** Events waiting to be written. */
  get queued(): number {
    return this.count;
  }

  /** Totals since start, for tests and logs. */
  get stats(): { written: number; dropped: number; queued: number } {
    return { written: this.written, dropped: this.dropped, queued: this.count };
  }

  /**
   * Write everything queued now. Rejects if the database is unreachable (the events stay
   * queued for the next try).
   */
  async flush(): Promise<void> {
    // Wait for a drain in progress, then drain what is left ourselves, surfacing errors.
    while (this.draining) await this.draining.catch(() => {});
    while (this.count > 0) {
      const run = this.drainOnce();
      this.draining = run;
      try {
        await run;
      } finally {
        this.draining = null;
      }
    }
  }

  /**
   * Stop the timer, refuse new events and write what is queued. Gives up after `timeoutMs`
   * (default 10 s) of failing writes; what is then still queued is counted as dropped.
   */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.closed = true;
    const deadline = Date.now() + timeoutMs;
    let delay = 50;
    for (;;) {
      try {
        await this.flush();
        return;
      } catch (err) {
        if (Date.now() + delay > deadline) {
          this.options.logger?.error(
            { err, lost: this.count },
            "audit: giving up on queued events at shutdown",
          );
          this.drop(this.takeFront(this.count).length, "shutdown");
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 1000);
      }
    }
  }

  private kick(): void {
    if (this.draining || this.count === 0 || Date.now() < this.retryAt) return;
    const run = this.drainAll();
    this.draining = run;
    run
      .catch((err: unknown) => {
        this.options.metrics?.auditWriteErrors.inc();
        this.backoffMs = Math.min(Math.max(this.backoffMs * 2, this.flushIntervalMs), this.maxBackoffMs);
        this.retryAt = Date.now() + this.backoffMs;
        this.options.logger?.warn(
          { err, queued: this.count, retryInMs: this.backoffMs },
          "audit: batch write failed; will retry",
        );
      })
      .finally(() => {
        if (this.draining === run) this.draining = null;
      });
  }

  private async drainAll(): Promise<void> {
    while (this.count > 0) await this.drainOnce();
  }

  private async drainOnce(): Promise<void> {
    const batch = this.takeFront(Math.min(this.batchSize, this.count));
    this.options.metrics?.auditQueued.set(this.count);
    try {
      await this.writeBatch(batch);
      this.backoffMs = 0;
      this.retryAt = 0;
    } catch (err) {
      const unwritten = err instanceof UnwrittenError ? err.events : batch;
      this.pushFront(unwritten);
      this.options.metrics?.auditQueued.set(this.count);
      throw err instanceof UnwrittenError ? err.cause : err;
    }
  }

  /** Write `batch`; throws UnwrittenError carrying what was not written on a transient failure. */
  private async writeBatch(batch: ToolCallEvent[]): Promise<void> {
    try {
      const count = await this.options.prisma.$executeRawUnsafe(INSERT_SQL, ...toColumns(batch));
      this.written += count;
      this.options.metrics?.auditWritten.inc(count);
    } catch (err) {
      if (!isPermanent(err)) throw new UnwrittenError(batch, err);
      if (batch.length === 1) {
        this.options.logger?.warn({ err, event: batch[0] }, "audit: database refused an event; dropped");
        this.drop(1, "rejected");
        return;
      }
      const mid = batch.length >> 1;
      const tail = batch.slice(mid);
      try {
        await this.writeBatch(batch.slice(0, mid));
      } catch (e) {
        if (e instanceof UnwrittenError) throw new UnwrittenError([...e.events, ...tail], e.cause);
        throw e;
      }
      await this.writeBatch(tail);
    }
  }

  private drop(n: number, reason: "queue_full" | "rejected" | "shutdown"): void {
    if (n <= 0) return;
    this.dropped += n;
    this.options.metrics?.auditDropped.inc({ reason }, n);
  }

  private pushBack(events: ToolCallEvent[]): void {
    const cap = this.ring.length;
    for (const e of events) {
      if (this.count === cap) {
        // Full: overwrite the oldest.
        this.ring[this.head] = e;
        this.head = (this.head + 1) % cap;
        this.drop(1, "queue_full");
      } else {
        this.ring[(this.head + this.count) % cap] = e;
        this.count++;
      }
    }
  }

  /** Put events back at the front (they are older than anything queued since). */
  private pushFront(events: ToolCallEvent[]): void {
    const cap = this.ring.length;
    const room = cap - this.count;
    // Keep the newest of the returned events that fit; the older ones are the ones to drop.
    const keep = events.length > room ? events.slice(events.length - room) : events;
    this.drop(events.length - keep.length, "queue_full");
    for (let i = keep.length - 1; i >= 0; i--) {
      this.head = (this.head - 1 + cap) % cap;
      this.ring[this.head] = keep[i];
      this.count++;
    }
  }

  private takeFront(n: number): ToolCallEvent[] {
    const cap = this.ring.length;
    const out: ToolCallEvent[] = [];
    for (let i = 0; i < n; i++) {
      out.push(this.ring[this.head] as ToolCallEvent);
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % cap;
    }
    this.count -= n;
    return out;
  }
}

class UnwrittenError extends Error {
  constructor(
    readonly events: ToolCallEvent[],
    override readonly cause: unknown,
  ) {
    super("audit batch not written");
  }
}

// One statement per batch with the rows as one JSON parameter: Prisma's `createMany` compiled a
// 500-row batch (6,500 parameters) in its query compiler on the gateway's event loop, about a
// fifth of a node's CPU at saturation in the benchmark (test/bench/RESULTS.md), and array
// parameters cost JS escaping per element; JSON.stringify is native, Postgres does the rest.
const INSERT_SQL = `INSERT INTO "AuditEvent"
  ("id", "tenantId", "at", "kind", "actor", "agent", "upstream", "tool", "decision", "ruleId", "outcome", "latencyMs", "requestId", "details")
SELECT id, "tenantId", at, 'tool_call'::"AuditKind", actor, agent, upstream, tool, decision, "ruleId", outcome, "latencyMs", "requestId", details
FROM jsonb_to_recordset($1::jsonb) AS t(id uuid, "tenantId" uuid, at timestamp(3), actor text, agent text, upstream text,
  tool text, decision text, "ruleId" text, outcome text, "latencyMs" int, "requestId" text, details jsonb)`;

function toColumns(batch: ToolCallEvent[]): [string] {
  const random = randomBytes(16 * batch.length);
  const rows = batch.map((e, i) => {
    const details: Record<string, unknown> = {
      upstreamLatencyMs: e.upstreamLatencyMs,
      argsSize: e.argsSize,
      argsHash: e.argsHash,
    };
    if (e.args !== undefined) details.args = e.args;
    return {
      id: uuidv7(e.at.getTime(), random.subarray(16 * i, 16 * i + 16)),
      tenantId: e.tenantId,
      at: e.at.toISOString(),
      actor: e.principalId ?? e.principal?.id ?? null,
      agent: e.agent,
      upstream: e.upstream,
      tool: e.tool,
      decision: e.decision,
      ruleId: e.ruleId,
      outcome: e.outcome,
      latencyMs: Math.round(e.latencyMs),
      requestId: e.requestId,
      details,
    };
  });
  return [JSON.stringify(rows)];
}

/** RFC 9562 UUID version 7 (ms timestamp, then random): the ids Prisma's `uuid(7)` default makes. */
function uuidv7(ms: number, b: Buffer): string {
  b.writeUIntBE(ms, 0, 6);
  b[6] = 0x70 | (b[6]! & 0x0f);
  b[8] = 0x80 | (b[8]! & 0x3f);
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Errors that retrying cannot fix. A raw statement fails with P2010 carrying the database's
 * SQLSTATE: integrity violations (class 23, e.g. the tenant was deleted) and bad data (class 22)
 * are permanent; anything else (server unreachable, pool exhausted, restarting) is transient.
 * Other Prisma request errors (P2xxx) are permanent except timeouts and conflicts.
 */
function isPermanent(err: unknown): boolean {
  const e = err as {
    code?: unknown;
    meta?: { driverAdapterError?: { cause?: { originalCode?: unknown } } };
  } | null;
  const code = e?.code;
  if (typeof code !== "string" || !code.startsWith("P2")) return false;
  if (code === "P2010") {
    const sqlState = e?.meta?.driverAdapterError?.cause?.originalCode;
    return typeof sqlState === "string" && (sqlState.startsWith("23") || sqlState.startsWith("22"));
  }
  return !["P2024", "P2028", "P2034"].includes(code);
}
