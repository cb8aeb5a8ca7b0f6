import { SECRET_MASK } from "@gatehouse/shared";

/** Routes that use POST but change nothing: no admin event for them. Keyed `METHOD /route/pattern`. */
export const READ_ONLY_ROUTES: ReadonlySet<string> = new Set([
  "POST /v1/tenants/:tenant/policy/simulate",
  "POST /v1/tenants/:tenant/upstream-test",
  // Console sign-out belongs to no tenant and changes no configuration.
  "POST /v1/auth/sign-out",
  "POST /v1/auth/sign-out-everywhere",
]);

const VERBS: Record<string, string> = { POST: "create", PUT: "update", PATCH: "update", DELETE: "delete" };

/**
 * The action an admin write is recorded as, from its method and route pattern:
 * `POST /v1/tenants/:tenant/upstreams` → `upstream.create`, `PUT …/policy` → `policy.update`,
 * `DELETE /v1/tenants/:tenant` → `tenant.delete`, `POST …/upstreams/:name/connect` →
 * `upstream.connect`, `DELETE …/upstreams/:name/credentials/:id` → `upstream.credential.delete`.
 * A final singular segment after another segment is the verb (`connect`, `refresh`); plural
 * segments are collections (`upstreams` → `upstream`).
 */
export function adminAction(method: string, routePattern: string): string {
  let segments = routePattern.split("/").filter(Boolean);
  if (segments[0] === "v1") segments = segments.slice(1);
  // `tenants/:tenant` scopes everything below it; on its own it is the tenant resource.
  if (segments[0] === "tenants" && segments[1] === ":tenant" && segments.length > 2) {
    segments = segments.slice(2);
  }
  let verb = VERBS[method.toUpperCase()] ?? method.toLowerCase();
  const parts: string[] = [];
  segments.forEach((segment, i) => {
    if (segment.startsWith(":")) return;
    if (i === segments.length - 1 && i > 0 && !segment.endsWith("s")) {
      verb = segment;
      return;
    }
    parts.push(singular(segment));
  });
  return [...parts, verb].join(".");
}

function singular(segment: string): string {
  if (segment.endsWith("ies")) return `${segment.slice(0, -3)}y`;
  if (segment.endsWith("s")) return segment.slice(0, -1);
  return segment;
}

// Fields that hold a secret under any resource. Responses already mask theirs; a create answer
// carries the minted key or token once, and must never reach the audit log.
const SECRET_FIELDS =
  /^(key|apiKey|token|accessToken|refreshToken|idToken|secret|clientSecret|password|codeVerifier|privateKey)$/i;
// Stored forms of secrets: never shown, not even masked.
const DROPPED_FIELDS = /(Sealed|Hash|^hash)$/;
// Query parameters that carry a credential or a one-time value.
const SECRET_PARAMS = ["state", "code", "token", "access_token", "refresh_token", "client_secret", "key"];

/**
 * A copy of an API view fit for the audit log: sealed fields and hashes dropped, secret values
 * replaced by the mask (so the log still shows that a secret was set), credentials in URL query
 * strings masked. Applied to `before` and `after` of every admin event.
 */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value instanceof Date) return value.toISOString();
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (DROPPED_FIELDS.test(k)) continue;
      if (SECRET_FIELDS.test(k) && v !== null && v !== undefined && v !== "" && typeof v !== "boolean") {
        out[k] = SECRET_MASK;
        continue;
      }
      out[k] = redactSecrets(v);
    }
    return out;
  }
  if (typeof value === "string") return redactUrl(value);
  return value;
}

function redactUrl(s: string): string {
  if (!/^https?:\/\/[^?]+\?/i.test(s)) return s;
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return s;
  }
  let changed = false;
  for (const name of SECRET_PARAMS) {
    if (url.searchParams.has(name)) {
      url.searchParams.set(name, SECRET_MASK);
      changed = true;
    }
  }
  return changed ? url.toString() : s;
}
