export { authenticate, credentialOf, JwtVerifier } from "./auth/authenticate.js";
export {
  ConfigError,
  type GatewayConfig,
  GatewayEnvSchema,
  gatewayConfig,
  loadGatewayConfig,
} from "./config/gateway.config.js";
export { createGateway, type Gateway, type GatewayDeps } from "./gateway.js";
export { type CoreMetrics, createCoreMetrics } from "./metrics/metrics.js";
export { GATEWAY_VERSION, type GatewayNode, type GatewayNodeOptions, startGatewayNode } from "./node.js";
export { createOps, type Ops, type OpsOptions } from "./ops/ops.js";
export {
  type AuditSink,
  noopAuditSink,
  noopRateLimiter,
  type RateLimiter,
  type ToolCallEvent,
} from "./ports.js";
export {
  MemorySessionStore,
  RedisSessionStore,
  type SessionRecord,
  type SessionStore,
  type UpstreamSessionRef,
} from "./sessions/session-store.js";
export { TenantConfigCache } from "./tenancy/config-cache.js";
export type { TenantState } from "./tenancy/tenant-state.js";
