import type { IncomingMessage } from "node:http";
import type { IdentityProviderSnapshot, Principal } from "@gatehouse/shared";
import { hashToken } from "@gatehouse/shared/node";
import { createRemoteJWKSet, decodeJwt, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from "jose";
import type { TenantState } from "../tenancy/tenant-state.js";

export type AuthResult =
  | { ok: true; principal: Principal }
  | { ok: false; reason: string; presented: boolean };

const API_KEY_PREFIX = "mgw_";

/**
 * Verifies agents' JWTs against the tenant's identity providers. One remote JWKS per JWKS URI,
 * cached for the life of the node (jose refetches on an unknown `kid`, so key rotation works);
 * the JWKS URI comes from the provider or from its OpenID discovery document.
 */
export class JwtVerifier {
  private readonly jwks = new Map<string, JWTVerifyGetKey>();
  private readonly discovered = new Map<string, Promise<string>>();

  constructor(private readonly opts: { discoveryTimeoutMs?: number } = {}) {}

  private async jwksUriOf(idp: IdentityProviderSnapshot): Promise<string> {
    if (idp.jwksUri) return idp.jwksUri;
    let p = this.discovered.get(idp.issuer);
    if (!p) {
      p = (async () => {
        const url = `${idp.issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
        const res = await fetch(url, { signal: AbortSignal.timeout(this.opts.discoveryTimeoutMs ?? 5000) });
        if (!res.ok) throw new Error(`OpenID discovery at ${url} answered ${res.status}`);
        const doc = (await res.json()) as { jwks_uri?: unknown };
        if (typeof doc.jwks_uri !== "string") throw new Error(`OpenID discovery at ${url} has no jwks_uri`);
        return doc.jwks_uri;
      })();
      this.discovered.set(idp.issuer, p);
      // A failed discovery is retried on the next token, not cached forever.
      p.catch(() => this.discovered.delete(idp.issuer));
    }
    return await p;
  }

  private keySet(uri: string): JWTVerifyGetKey {
    let set = this.jwks.get(uri);
    if (!set) {
      set = createRemoteJWKSet(new URL(uri), { timeoutDuration: 5000, cooldownDuration: 30_000 });
      this.jwks.set(uri, set);
    }
    return set;
  }

  async verify(
    token: string,
    tenant: TenantState,
  ): Promise<{ idp: IdentityProviderSnapshot; payload: JWTPayload } | null> {
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch {
      return null;
    }
    const idp = tenant.identityProviders.find((i) => i.issuer === unverified.iss);
    if (!idp) return null;
    const audience = [tenant.gatewayUrl, ...idp.audiences];
    const keys = this.keySet(await this.jwksUriOf(idp));
    const { payload } = await jwtVerify(token, keys, {
      issuer: idp.issuer,
      audience,
      requiredClaims: ["exp", "sub"],
      clockTolerance: 5,
    });
    return { idp, payload };
  }
}

function rolesFrom(payload: JWTPayload, idp: IdentityProviderSnapshot): string[] {
  const roles = new Set<string>();
  const raw = payload[idp.roleClaim ?? "roles"];
  if (Array.isArray(raw)) for (const r of raw) if (typeof r === "string") roles.add(r);
  if (typeof raw === "string") for (const r of raw.split(/[\s,]+/)) if (r) roles.add(r);
  for (const m of idp.claimMappings) {
    const v = payload[m.claim];
    const values = Array.isArray(v) ? v : typeof v === "string" ? v.split(/\s+/) : v === undefined ? [] : [v];
    if (values.some((x) => String(x) === m.value)) roles.add(m.role);
  }
  return [...roles];
}

/** The credential in the request: `Authorization: Bearer …` or `X-API-Key`. */
export function credentialOf(req: IncomingMessage): string | null {
  const auth = req.headers.authorization;
  if (typeof auth === "string") {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1]! : auth.trim() === "" ? null : auth.trim();
  }
  const key = req.headers["x-api-key"];
  if (typeof key === "string" && key.trim() !== "") return key.trim();
  return null;
}

/**
 * Who is calling (architecture.md, "The gateway's job", step 2): an API key of this tenant, a JWT
 * of one of its identity providers, or the anonymous principal when the tenant allows it. A key of
 * another tenant fails exactly like an unknown one.
 */
export async function authenticate(
  req: IncomingMessage,
  tenant: TenantState,
  jwt: JwtVerifier,
  now = Date.now(),
): Promise<AuthResult> {
  const credential = credentialOf(req);
  if (credential === null) {
    if (tenant.settings.anonymousAccess) {
      return {
        ok: true,
        principal: { kind: "anonymous", id: "anonymous", agent: null, roles: [], claims: {} },
      };
    }
    return { ok: false, reason: "no credentials", presented: false };
  }
  if (credential.startsWith(API_KEY_PREFIX)) {
    const key = tenant.keysByHash.get(hashToken(credential));
    if (!key) return { ok: false, reason: "unknown API key", presented: true };
    if (key.expiresAt && Date.parse(key.expiresAt) <= now) {
      return { ok: false, reason: "expired API key", presented: true };
    }
    return {
      ok: true,
      principal: {
        kind: "api_key",
        id: `key:${key.id}`,
        keyId: key.id,
        agent: key.agent,
        roles: key.roles,
        claims: {},
      },
    };
  }
  if (credential.split(".").length !== 3 || tenant.identityProviders.length === 0) {
    return { ok: false, reason: "unrecognised credential", presented: true };
  }
  try {
    const verified = await jwt.verify(credential, tenant);
    if (!verified)
      return { ok: false, reason: "token from no identity provider of this tenant", presented: true };
    const { idp, payload } = verified;
    const sub = String(payload.sub);
    const agent =
      typeof payload.azp === "string"
        ? payload.azp
        : typeof payload.client_id === "string"
          ? payload.client_id
          : null;
    return {
      ok: true,
      principal: {
        kind: "jwt",
        id: `sub:${idp.id}:${sub}`,
        subject: sub,
        agent,
        roles: rolesFrom(payload, idp),
        claims: payload as Record<string, unknown>,
      },
    };
  } catch (err) {
    return { ok: false, reason: `invalid token: ${(err as Error).message}`, presented: true };
  }
}
