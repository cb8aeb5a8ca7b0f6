import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/**
 * The core's few metrics (the operator-facing set lives in src/ops). The gateway's Prometheus registry. `createGateway` takes an optional registry so the operations
 * work (apps/gateway/src/ops) can register its own metrics on the same `/metrics`.
 */
export interface CoreMetrics {
  registry: Registry;
  httpRequests: Counter<"method" | "status">;
  mcpRequests: Counter<"method" | "outcome">;
  toolCallSeconds: Histogram<"outcome">;
  sessionsOpen: Gauge;
  /** Agents' answers to relayed requests that matched none of their own session (ignored). */
  strayClientResponses: Counter;
  /** SSE streams ended because their reader fell too far behind. */
  sseStreamsDropped: Counter;
}

/** On a registry of its own it also collects the process defaults; a registry passed in is left to its owner for those. */
export function createCoreMetrics(shared?: Registry): CoreMetrics {
  const registry = shared ?? new Registry();
  if (!shared) collectDefaultMetrics({ register: registry });
  const get = <T>(name: string, make: () => T): T =>
    (registry.getSingleMetric(name) as T | undefined) ?? make();
  return {
    registry,
    httpRequests: get(
      "gatehouse_gateway_http_requests_total",
      () =>
        new Counter({
          name: "gatehouse_gateway_http_requests_total",
          help: "HTTP requests answered by the gateway",
          labelNames: ["method", "status"] as const,
          registers: [registry],
        }),
    ),
    mcpRequests: get(
      "gatehouse_gateway_mcp_requests_total",
      () =>
        new Counter({
          name: "gatehouse_gateway_mcp_requests_total",
          help: "JSON-RPC requests by method and outcome",
          labelNames: ["method", "outcome"] as const,
          registers: [registry],
        }),
    ),
    toolCallSeconds: get(
      "gatehouse_gateway_tool_call_seconds",
      () =>
        new Histogram({
          name: "gatehouse_gateway_tool_call_seconds",
          help: "tools/call latency as the agent sees it",
          labelNames: ["outcome"] as const,
          buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
          registers: [registry],
        }),
    ),
    sessionsOpen: get(
      "gatehouse_gateway_sessions_local",
      () =>
        new Gauge({
          name: "gatehouse_gateway_sessions_local",
          help: "MCP sessions with state on this node",
          registers: [registry],
        }),
    ),
    strayClientResponses: get(
      "gatehouse_gateway_stray_client_responses_total",
      () =>
        new Counter({
          name: "gatehouse_gateway_stray_client_responses_total",
          help: "Agent answers to relayed server-to-client requests that matched no request of their own session (ignored)",
          registers: [registry],
        }),
    ),
    sseStreamsDropped: get(
      "gatehouse_gateway_sse_streams_dropped_total",
      () =>
        new Counter({
          name: "gatehouse_gateway_sse_streams_dropped_total",
          help: "SSE streams ended because the client read too slowly (GATEWAY_SSE_MAX_BUFFERED_BYTES queued)",
          registers: [registry],
        }),
    ),
  };
}
