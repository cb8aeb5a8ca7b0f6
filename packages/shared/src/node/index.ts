// Node-only helpers (crypto, Redis). Not for the browser.

export {
  EgressEnvSchema,
  type EgressPolicy,
  egressPolicy,
  refusedAddressReason,
  refusedUrlReason,
} from "./egress.js";
export {
  ADMIN_TOKEN_PREFIX,
  API_KEY_PREFIX,
  type GeneratedToken,
  generateAdminToken,
  generateApiKey,
  hashToken,
  looksLikeAdminToken,
  looksLikeApiKey,
  safeEqual,
  VISIBLE_PREFIX_LENGTH,
  verifyToken,
} from "./keys.js";
export { networkCauseOf } from "./network-error.js";
export { type BusLogger, RedisBus, type RedisBusOptions } from "./redis-bus.js";
export { createSealer, generateSecretsKey, parseSecretsKey, type Sealer, SealingError } from "./sealing.js";
export {
  hasSealedHeaders,
  type SealedUpstreamHeaders,
  staticUpstreamHeaders,
} from "./upstream-headers.js";
export {
  type ConnectTicket,
  connectLink,
  type OAuthUpstreamRef,
  openConnectTicket,
  type StoredCredential,
  sealConnectTicket,
  type UpstreamAccessToken,
  UpstreamTokens,
  type UpstreamTokensOptions,
} from "./upstream-tokens.js";
