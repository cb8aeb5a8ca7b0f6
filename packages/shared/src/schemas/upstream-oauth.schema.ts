import { z } from "zod";

/** Upstream auth modes whose tokens the platform obtains and refreshes itself (issue 5). */
export const OAUTH_AUTH_MODES = [
  "oauth-client-credentials",
  "oauth-authorization-code",
  "mcp-oauth",
] as const;
export type OAuthAuthMode = (typeof OAUTH_AUTH_MODES)[number];

/** True for the auth modes that use stored `UpstreamCredential`s instead of a static secret. */
export function isOAuthAuthMode(mode: string): mode is OAuthAuthMode {
  return (OAUTH_AUTH_MODES as readonly string[]).includes(mode);
}

/** An OAuth scope token (RFC 6749 section 3.3). */
export const OAuthScopeSchema = z
  .string()
  .regex(/^[\x21\x23-\x5B\x5D-\x7E]{1,200}$/, "Not a valid OAuth scope");

const ResourceIndicatorSchema = z.url({
  protocol: /^https?$/,
  error: "Must be an absolute http(s) URL (RFC 8707 resource indicator)",
});

/** A reference to one of the tenant's OAuth clients: its name or id. */
const OAuthClientRefSchema = z.string().min(1).max(100);

/**
 * `oauth-client-credentials`: the platform gets tokens with the client credentials grant of one of
 * the tenant's OAuth clients. One credential shared by every caller.
 */
export const UpstreamAuthOAuthClientCredentialsSchema = z.strictObject({
  mode: z.literal("oauth-client-credentials"),
  oauthClient: OAuthClientRefSchema,
  /** Replaces the OAuth client's default scopes for this upstream. */
  scopes: z.array(OAuthScopeSchema).max(50).optional(),
  /** RFC 8707 `resource` sent with every token request. */
  resource: ResourceIndicatorSchema.optional(),
});

/**
 * `oauth-authorization-code`: a person connects an account (`POST …/upstreams/{name}/connect`).
 * With `perUser`, each calling principal connects their own and calls carry only their token.
 */
export const UpstreamAuthOAuthAuthorizationCodeSchema = z.strictObject({
  mode: z.literal("oauth-authorization-code"),
  oauthClient: OAuthClientRefSchema,
  scopes: z.array(OAuthScopeSchema).max(50).optional(),
  resource: ResourceIndicatorSchema.optional(),
  perUser: z.boolean().optional(),
});

/**
 * `mcp-oauth`: the MCP authorization spec toward the upstream. The authorization server is found
 * from the upstream's 401 (RFC 9728 protected resource metadata, then RFC 8414 metadata); the
 * client is `oauthClient` when given, else a client ID metadata document or dynamic client
 * registration (RFC 7591). The upstream's resource identifier is always sent as `resource`.
 */
export const UpstreamAuthMcpOAuthSchema = z.strictObject({
  mode: z.literal("mcp-oauth"),
  oauthClient: OAuthClientRefSchema.optional(),
  /** `authorization_code` (a person connects) or `client_credentials` (the platform itself). */
  grant: z.enum(["authorization_code", "client_credentials"]).optional(),
  scopes: z.array(OAuthScopeSchema).max(50).optional(),
  perUser: z.boolean().optional(),
});

export type UpstreamAuthOAuthClientCredentials = z.infer<typeof UpstreamAuthOAuthClientCredentialsSchema>;
export type UpstreamAuthOAuthAuthorizationCode = z.infer<typeof UpstreamAuthOAuthAuthorizationCodeSchema>;
export type UpstreamAuthMcpOAuth = z.infer<typeof UpstreamAuthMcpOAuthSchema>;
export type UpstreamAuthOAuth =
  | UpstreamAuthOAuthClientCredentials
  | UpstreamAuthOAuthAuthorizationCode
  | UpstreamAuthMcpOAuth;

/**
 * What `Upstream.authConfig` holds for the OAuth modes (non-secret). The OAuth client itself is
 * the `Upstream.oauthClientId` column. `resource`, `authorizationServer` and `registration` of
 * `mcp-oauth` upstreams are filled in by discovery.
 */
export const OAuthAuthConfigSchema = z.object({
  scopes: z.array(z.string()).optional(),
  resource: z.string().optional(),
  perUser: z.boolean().optional(),
  grant: z.enum(["authorization_code", "client_credentials"]).optional(),
  /** mcp-oauth: the authorization server chosen from the protected resource metadata. */
  authorizationServer: z.string().optional(),
  /** mcp-oauth: how the client came to be. */
  registration: z.enum(["preregistered", "metadata-document", "dynamic"]).optional(),
});
export type OAuthAuthConfig = z.infer<typeof OAuthAuthConfigSchema>;

/** Reads an upstream's `authConfig` JSON for an OAuth mode; unknown or bad fields are dropped. */
export function readOAuthAuthConfig(authConfig: unknown): OAuthAuthConfig {
  const parsed = OAuthAuthConfigSchema.safeParse(authConfig ?? {});
  return parsed.success ? parsed.data : {};
}

/** The grant a credential of this upstream is obtained with. */
export function oauthGrantOf(
  authMode: string,
  config: OAuthAuthConfig,
): "client_credentials" | "authorization_code" {
  if (authMode === "oauth-client-credentials") return "client_credentials";
  if (authMode === "mcp-oauth" && config.grant === "client_credentials") return "client_credentials";
  return "authorization_code";
}

/**
 * The credential subject calls of `principalId` use: `""` (shared by the tenant) unless the
 * upstream is per-user, then the principal id itself (`key:<id>`, `sub:<subject>`), so no
 * caller ever gets another's token.
 */
export function credentialSubjectFor(
  upstream: { authMode: string; authConfig: unknown },
  principalId: string,
): string {
  const config = readOAuthAuthConfig(upstream.authConfig);
  if (oauthGrantOf(upstream.authMode, config) === "client_credentials") return "";
  return config.perUser ? principalId : "";
}

/** A credential as the API shows it (`GET …/upstreams/{name}/credentials`); tokens never appear. */
export const UpstreamCredentialViewSchema = z.object({
  id: z.string(),
  /** `""` for the tenant's shared credential, else the principal (`key:<id>`, `sub:<subject>`). */
  subject: z.string(),
  status: z.enum(["active", "refreshing", "needs_reconnect", "error"]),
  hasRefreshToken: z.boolean(),
  scope: z.string().nullable(),
  expiresAt: z.string().nullable(),
  generation: z.number().int(),
  lastRefreshAt: z.string().nullable(),
  lastRefreshError: z.string().nullable(),
  failureCount: z.number().int(),
  /** Where a person reconnects this credential (needs_reconnect), when the mode allows it. */
  connectUrl: z.string().nullable(),
  /** Scheduled and recent jobs of this credential, newest first. */
  jobs: z.array(z.record(z.string(), z.unknown())),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type UpstreamCredentialView = z.infer<typeof UpstreamCredentialViewSchema>;

/** `POST /v1/tenants/{tenant}/upstreams/{name}/connect`. */
export const ConnectRequestSchema = z.strictObject({
  /**
   * For per-user upstreams: the principal the account is connected for (`key:<id>`,
   * `sub:<subject>`). Shared upstreams take none.
   */
  subject: z.string().min(1).max(300).optional(),
  /** Where the browser is sent after a successful callback (http(s)). */
  returnTo: z.url({ protocol: /^https?$/ }).optional(),
});
export type ConnectRequest = z.infer<typeof ConnectRequestSchema>;

export const ConnectResponseSchema = z.object({
  authorizationUrl: z.string(),
  expiresAt: z.string(),
});

/** `POST /v1/tenants/{tenant}/upstreams/{name}/credentials/refresh`. */
export const CredentialRefreshRequestSchema = z.strictObject({
  subject: z.string().max(300).optional(),
});
