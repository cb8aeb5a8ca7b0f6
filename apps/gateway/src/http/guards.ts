import type { IncomingMessage, ServerResponse } from "node:http";
import { AppError, ErrorCode } from "@gatehouse/shared";
import { sendAppError } from "./respond.js";

/** Hostname of a Host header (`name:port`, `[v6]:port`), lower-cased; null when malformed. */
export function hostnameOf(hostHeader: string): string | null {
  try {
    return new URL(`http://${hostHeader}`).hostname.toLowerCase();
  } catch {
    return null;
  }
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

/** The Host names this gateway answers to: loopback, the public host, and any configured extras. */
export function allowedHostSet(publicUrl: string, extra: string[]): Set<string> {
  const set = new Set(LOOPBACK);
  set.add(new URL(publicUrl).hostname.toLowerCase());
  for (const h of extra) {
    const name = hostnameOf(h);
    if (name) set.add(name);
  }
  return set;
}

/**
 * DNS-rebinding protection (MCP Streamable HTTP, "Security Warning"): a request whose Host is not
 * one of ours is refused with 403 before anything else runs. Returns true when it answered.
 */
export function rejectForeignHost(req: IncomingMessage, res: ServerResponse, allowed: Set<string>): boolean {
  const host = req.headers.host;
  const name = host ? hostnameOf(host) : null;
  if (name && allowed.has(name)) return false;
  sendAppError(
    res,
    new AppError(
      ErrorCode.FORBIDDEN,
      `Host header ${JSON.stringify(host ?? "")} is not served by this gateway; use the gateway's public URL.`,
    ),
    null,
    {},
    403,
  );
  return true;
}

/**
 * Origin validation (MCP Streamable HTTP, "Security Warning": servers MUST validate Origin and
 * answer 403 when it is present and invalid). No Origin header (non-browser clients) is fine.
 * Allowed: the gateway's own origin, the tenant's `allowedOrigins`, and a same-origin request (its
 * Origin names the Host it was sent to, which the Host guard already accepted). Returns true when it answered.
 */
export function rejectForeignOrigin(
  req: IncomingMessage,
  res: ServerResponse,
  ownOrigin: string,
  tenantOrigins: ReadonlySet<string>,
  host?: string,
): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  let normalized: string | null = null;
  try {
    normalized = new URL(origin).origin;
  } catch {
    normalized = null;
  }
  if (normalized && (normalized === ownOrigin || tenantOrigins.has(normalized))) return false;
  if (normalized && host && new URL(normalized).host === host.toLowerCase()) return false;
  sendAppError(
    res,
    new AppError(
      ErrorCode.FORBIDDEN,
      `Origin ${JSON.stringify(origin)} may not call this gateway; a tenant admin can add it to the tenant's allowedOrigins.`,
    ),
    null,
    {},
    403,
  );
  return true;
}
