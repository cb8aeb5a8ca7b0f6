import type { Sealer } from "./sealing.js";

/** The sealed fields of an upstream (database row or gateway snapshot) that become request headers. */
export interface SealedUpstreamHeaders {
  headersSealed: string | null;
  authSecretSealed: string | null;
  authMode: string;
  authConfig: unknown;
}

/** True when the upstream has sealed values that `staticUpstreamHeaders` would need to unseal. */
export function hasSealedHeaders(u: SealedUpstreamHeaders): boolean {
  return Boolean(u.headersSealed) || (Boolean(u.authSecretSealed) && isStaticAuth(u.authMode));
}

/**
 * The upstream's static headers and static credential (`bearer` → `Authorization: Bearer …`,
 * `header` → `<headerName>: …`), unsealed. Never the agent's own credentials; OAuth tokens are
 * added by their own machinery.
 */
export function staticUpstreamHeaders(u: SealedUpstreamHeaders, sealer: Sealer): Record<string, string> {
  const headers: Record<string, string> = {};
  if (u.headersSealed) {
    for (const [k, v] of Object.entries(sealer.unsealJson<Record<string, unknown>>(u.headersSealed) ?? {})) {
      if (typeof v === "string") headers[k] = v;
    }
  }
  if (u.authSecretSealed && isStaticAuth(u.authMode)) {
    const secret = sealer.unseal(u.authSecretSealed);
    if (u.authMode === "bearer") headers.Authorization = `Bearer ${secret}`;
    else {
      const name = (u.authConfig as { headerName?: unknown } | null)?.headerName;
      headers[typeof name === "string" ? name : "Authorization"] = secret;
    }
  }
  return headers;
}

function isStaticAuth(mode: string): boolean {
  return mode === "bearer" || mode === "header";
}
