/**
 * Who is calling the gateway, as the policy engine, rate limiter, session store and per-user
 * credentials see it. Built by the gateway from an API key, a verified JWT, or (when the tenant
 * allows it) nobody.
 */
export interface Principal {
  kind: "api_key" | "jwt" | "anonymous";
  /**
   * Stable identity used to bind sessions, key rate limits and per-user upstream credentials:
   * `key:<apiKeyId>`, `sub:<subject>` (JWT, prefixed by the IdP id when needed to stay unique), or `anonymous`.
   */
  id: string;
  /** API key id, for `key:<id>` policy principals. */
  keyId?: string;
  /** JWT subject, for `sub:<subject>` policy principals. */
  subject?: string;
  /** Agent name (from the key's `agent`, or the JWT's client/azp), for `agent:<name>` principals. */
  agent?: string | null;
  roles: string[];
  /** Verified JWT claims ({} for API keys). Seen by CEL `when` as `claims`. */
  claims: Record<string, unknown>;
}
