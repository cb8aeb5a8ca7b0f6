// REST request/response schemas of apps/api (api.md). Browser-safe.
export * from "./admin-tokens.schema.js";
export * from "./api-keys.schema.js";
export * from "./audit.schema.js";
export * from "./common.schema.js";
export * from "./console.schema.js";
export * from "./gateways.schema.js";
export * from "./identity-providers.schema.js";
export * from "./oauth-clients.schema.js";
export * from "./policy-api.schema.js";
export * from "./tenants.schema.js";
export * from "./upstream-oauth.schema.js";
export * from "./upstreams.schema.js";
