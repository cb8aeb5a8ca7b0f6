// Gateway operations (issue 4): rate limits, audit, metrics, circuit breakers, node registry, tracing.
export * from "./audit-writer.js";
export * from "./circuit-breaker.js";
export * from "./metrics.js";
export * from "./node-registry.js";
export * from "./ops.js";
export * from "./rate-limiter.js";
export * from "./tracing.js";
