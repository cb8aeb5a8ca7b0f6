import { Counter, type Registry } from "prom-client";

export const OAUTH_METRICS = Symbol("OAuthMetrics");

export interface OAuthMetrics {
  /** Token requests by grant and result (`ok`, `transient`, `permanent`). */
  tokenRequests: Counter<"grant" | "result">;
  /** Credentials that became `needs_reconnect` (a person or an admin must act). */
  needsReconnect: Counter<"mode">;
}

const byRegistry = new WeakMap<Registry, OAuthMetrics>();

/** The OAuth counters on `registry` (created once per registry). */
export function oauthMetrics(registry: Registry): OAuthMetrics {
  let metrics = byRegistry.get(registry);
  if (!metrics) {
    metrics = {
      tokenRequests: new Counter({
        name: "gatehouse_oauth_token_requests_total",
        help: "Token requests to upstream authorization servers, by grant and result",
        labelNames: ["grant", "result"] as const,
        registers: [registry],
      }),
      needsReconnect: new Counter({
        name: "gatehouse_oauth_needs_reconnect_total",
        help: "Upstream credentials that failed permanently and need to be reconnected",
        labelNames: ["mode"] as const,
        registers: [registry],
      }),
    };
    byRegistry.set(registry, metrics);
  }
  return metrics;
}
