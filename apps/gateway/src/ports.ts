import type { Principal } from "@gatehouse/shared";

/**
 * Seams for the operations work (issue 4, apps/gateway/src/ops): the gateway calls these; the
 * real implementations (Redis token buckets, batched audit writer) are injected through
 * `createGateway` deps. The defaults here do nothing.
 */

/** Token bucket check, called before forwarding a tools/call (per key / principal, per tenant). */
export interface RateLimiter {
  take(key: string, perMinute: number): Promise<{ ok: boolean; retryAfterMs: number }>;
}

/** One tool call as the audit log and metrics see it. Arguments only as a size and a hash. */
export interface ToolCallEvent {
  tenantId: string;
  principal: Principal;
  agent: string | null;
  /** The upstream the call went to or was meant for; null when the name resolved to no upstream. */
  upstream: string | null;
  tool: string;
  /** The policy's verdict; null when it was never asked (the name resolved to no tool). */
  decision: "allow" | "deny" | null;
  ruleId: string | null;
  /** ok | error (the tool answered isError) | denied | rate_limited | upstream_unavailable | upstream_error | timeout | cancelled | not_found */
  outcome: string;
  /** Gateway receipt to answer. */
  latencyMs: number;
  /** Time spent waiting on the upstream (null when it was never contacted). */
  upstreamLatencyMs: number | null;
  requestId: string;
  argsSize: number;
  /** sha256 hex of the JSON arguments. */
  argsHash: string;
  /** Raw arguments; only for sinks of tenants that turned on argument capture. */
  args?: Record<string, unknown>;
  at: Date;
}

/** Receives one event per tool call. `record` must not block or throw; `flush` is awaited on shutdown. */
export interface AuditSink {
  record(e: ToolCallEvent): void;
  flush(): Promise<void>;
}

export const noopRateLimiter: RateLimiter = {
  take: async () => ({ ok: true, retryAfterMs: 0 }),
};

export const noopAuditSink: AuditSink = {
  record: () => {},
  flush: async () => {},
};
