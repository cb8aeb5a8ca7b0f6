import { createHash } from "node:crypto";
import type { PrismaClient } from "@gatehouse/db";
import {
  type ApiKeySnapshot,
  type CompiledPolicy,
  compilePolicy,
  DEFAULT_POLICY,
  type IdentityProviderSnapshot,
  isTenantIdShaped,
  type TenantSettings,
  TenantSettingsSchema,
  type TenantSnapshot,
  tenantRefWhere,
  type UpstreamSnapshot,
} from "@gatehouse/shared";

/** What a node holds per tenant: the snapshot plus everything precomputed for the hot path. */
export interface TenantState {
  id: string;
  slug: string;
  version: number;
  settings: TenantSettings;
  /** `${PUBLIC_GATEWAY_URL}/t/{slug}/mcp`: the default JWT audience and the RFC 9728 resource. */
  gatewayUrl: string;
  policy: CompiledPolicy;
  /** Set when the stored policy did not compile (the tenant then runs deny-all). */
  policyError: string | null;
  keysByHash: Map<string, ApiKeySnapshot>;
  keysById: Map<string, ApiKeySnapshot>;
  identityProviders: IdentityProviderSnapshot[];
  upstreams: UpstreamSnapshot[];
  upstreamsByName: Map<string, UpstreamSnapshot>;
  allowedOrigins: Set<string>;
  loadedAt: number;
}

/** An id-shaped `{tenant}` names a tenant by id only (slugs of that shape are refused). */
export const isUuid = isTenantIdShaped;

/** Loads one tenant's snapshot by slug or id (one query); null when there is no such tenant. */
export async function loadTenantSnapshot(prisma: PrismaClient, ref: string): Promise<TenantSnapshot | null> {
  const t = await prisma.tenant.findFirst({
    where: tenantRefWhere(ref),
    include: {
      apiKeys: true,
      identityProviders: true,
      upstreams: true,
      policies: { orderBy: { version: "desc" }, take: 1 },
    },
  });
  if (!t) return null;
  const settings = TenantSettingsSchema.safeParse(t.settings ?? {});
  return {
    tenantId: t.id,
    slug: t.slug,
    version: t.configVersion,
    settings: settings.success ? settings.data : TenantSettingsSchema.parse({}),
    apiKeys: t.apiKeys.map((k) => ({
      id: k.id,
      name: k.name,
      hash: k.hash,
      agent: k.agent,
      roles: k.roles,
      expiresAt: k.expiresAt ? k.expiresAt.toISOString() : null,
      rateLimitPerMinute: k.rateLimitPerMinute,
    })),
    identityProviders: t.identityProviders.map((i) => ({
      id: i.id,
      name: i.name,
      issuer: i.issuer,
      audiences: i.audiences,
      jwksUri: i.jwksUri,
      roleClaim: i.roleClaim,
      claimMappings: Array.isArray(i.claimMappings)
        ? (i.claimMappings as Array<{ claim: string; value: string; role: string }>).filter(
            (m) =>
              m && typeof m.claim === "string" && typeof m.value === "string" && typeof m.role === "string",
          )
        : [],
    })),
    upstreams: t.upstreams.map((u) => ({
      id: u.id,
      name: u.name,
      description: u.description,
      url: u.url,
      transport: u.transport === "streamable_http" ? "streamable-http" : u.transport,
      command: u.command,
      args: u.args,
      envSealed: u.envSealed,
      toolPrefix: u.toolPrefix,
      headersSealed: u.headersSealed,
      authMode: u.authMode,
      authConfig: (u.authConfig && typeof u.authConfig === "object" ? u.authConfig : {}) as Record<
        string,
        unknown
      >,
      authSecretSealed: u.authSecretSealed,
      enabled: u.enabled,
      timeoutMs: u.timeoutMs,
    })),
    policy: (t.policies[0]?.document ?? DEFAULT_POLICY) as TenantSnapshot["policy"],
  };
}

/** Compiles a snapshot into the in-memory state: policy compiled once, keys indexed by hash. */
export function buildTenantState(snapshot: TenantSnapshot, publicUrl: string): TenantState {
  let policy: CompiledPolicy;
  let policyError: string | null = null;
  try {
    policy = compilePolicy(snapshot.policy);
  } catch (err) {
    policyError = (err as Error).message;
    policy = compilePolicy(DEFAULT_POLICY);
  }
  const allowedOrigins = new Set<string>();
  for (const o of snapshot.settings.allowedOrigins) {
    try {
      allowedOrigins.add(new URL(o).origin);
    } catch {
      // schema-validated; ignore anything odd
    }
  }
  return {
    id: snapshot.tenantId,
    slug: snapshot.slug,
    version: snapshot.version,
    settings: snapshot.settings,
    gatewayUrl: `${publicUrl}/t/${snapshot.slug}/mcp`,
    policy,
    policyError,
    keysByHash: new Map(snapshot.apiKeys.map((k) => [k.hash, k])),
    keysById: new Map(snapshot.apiKeys.map((k) => [k.id, k])),
    identityProviders: snapshot.identityProviders,
    upstreams: snapshot.upstreams,
    upstreamsByName: new Map(snapshot.upstreams.map((u) => [u.name, u])),
    allowedOrigins,
    loadedAt: Date.now(),
  };
}

/** Identity of everything that shapes a connection to an upstream: a change means reconnect. */
export function upstreamFingerprint(u: UpstreamSnapshot): string {
  return createHash("sha256")
    .update(
      JSON.stringify([
        u.url,
        u.transport,
        u.command,
        u.args,
        u.envSealed,
        u.headersSealed,
        u.authMode,
        u.authConfig,
        u.authSecretSealed,
        u.timeoutMs,
      ]),
    )
    .digest("hex")
    .slice(0, 16);
}
