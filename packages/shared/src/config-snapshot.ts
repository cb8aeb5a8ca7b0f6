import { z } from "zod";
import { PolicyDocumentSchema } from "./policy/policy.schema.js";
import { TenantSettingsSchema } from "./tenant-settings.js";

/**
 * Everything a gateway node needs to serve one tenant, loaded from the database on first use
 * and reloaded when the bus announces a newer `version`. Secrets stay sealed here; the gateway
 * unseals them when it opens an upstream connection.
 */
export const ApiKeySnapshotSchema = z.object({
  id: z.string(),
  name: z.string(),
  /** SHA-256 hex of the full key (see `hashToken`). */
  hash: z.string(),
  agent: z.string().nullable(),
  roles: z.array(z.string()),
  expiresAt: z.string().nullable(),
  rateLimitPerMinute: z.number().int().nullable(),
});

export const IdentityProviderSnapshotSchema = z.object({
  id: z.string(),
  name: z.string(),
  issuer: z.string(),
  audiences: z.array(z.string()),
  jwksUri: z.string().nullable(),
  roleClaim: z.string().nullable(),
  claimMappings: z.array(z.object({ claim: z.string(), value: z.string(), role: z.string() })),
});

export const UpstreamSnapshotSchema = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  url: z.string().nullable(),
  transport: z.enum(["streamable-http", "sse", "stdio"]),
  command: z.string().nullable(),
  args: z.array(z.string()),
  envSealed: z.string().nullable(),
  toolPrefix: z.string(),
  headersSealed: z.string().nullable(),
  authMode: z.string(),
  authConfig: z.record(z.string(), z.unknown()),
  authSecretSealed: z.string().nullable(),
  enabled: z.boolean(),
  timeoutMs: z.number().int().nullable(),
});

export const TenantSnapshotSchema = z.object({
  tenantId: z.string(),
  slug: z.string(),
  version: z.number().int(),
  settings: TenantSettingsSchema,
  apiKeys: z.array(ApiKeySnapshotSchema),
  identityProviders: z.array(IdentityProviderSnapshotSchema),
  upstreams: z.array(UpstreamSnapshotSchema),
  policy: PolicyDocumentSchema,
});

export type ApiKeySnapshot = z.infer<typeof ApiKeySnapshotSchema>;
export type IdentityProviderSnapshot = z.infer<typeof IdentityProviderSnapshotSchema>;
export type UpstreamSnapshot = z.infer<typeof UpstreamSnapshotSchema>;
export type TenantSnapshot = z.infer<typeof TenantSnapshotSchema>;
