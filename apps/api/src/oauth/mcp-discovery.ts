import { AppError, ErrorCode } from "@gatehouse/shared";
import { z } from "zod";

/** What an MCP server says about its protection (RFC 9728 protected resource metadata). */
export interface ProtectedResource {
  /** The resource identifier: sent as `resource` in every authorization and token request (RFC 8707). */
  resource: string;
  authorizationServers: string[];
  scopesSupported: string[];
  /** Scopes named by the 401's `WWW-Authenticate: Bearer scope="…"`, if any (MCP: preferred). */
  challengeScopes: string[];
  metadataUrl: string;
}

const MetadataSchema = z.looseObject({
  resource: z.string().min(1),
  authorization_servers: z.array(z.string().min(1)).min(1),
  scopes_supported: z.array(z.string()).optional(),
});

/** The parameters of the Bearer challenge in a `WWW-Authenticate` header (RFC 6750 section 3). */
export function bearerChallengeParams(header: string | null): Record<string, string> {
  if (!header) return {};
  const bearer = /(?:^|,)\s*Bearer\s+(.*)$/i.exec(header);
  if (!bearer?.[1]) return {};
  const params: Record<string, string> = {};
  const re = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
  for (let m = re.exec(bearer[1]); m; m = re.exec(bearer[1])) {
    const name = m[1]!.toLowerCase();
    if (!(name in params)) params[name] = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : (m[3] ?? "");
  }
  return params;
}

/**
 * MCP authorization, "Authorization Server Discovery": ask the server without a token; its 401
 * names the protected resource metadata (`resource_metadata`). Without one, try the RFC 9728
 * well-known URIs (path-suffixed, then root). The metadata's `resource` must denote this server.
 */
export async function discoverProtectedResource(
  serverUrl: string,
  opts: { timeoutMs: number; fetch?: typeof fetch },
): Promise<ProtectedResource> {
  const doFetch = opts.fetch ?? fetch;
  const url = new URL(serverUrl);
  const failures: string[] = [];
  let challenge: Record<string, string> = {};
  try {
    const probe = await doFetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-11-25",
          capabilities: {},
          clientInfo: { name: "gatehouse-discovery", version: "0.1.0" },
        },
      }),
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    await probe.body?.cancel().catch(() => {});
    if (probe.status === 401) challenge = bearerChallengeParams(probe.headers.get("www-authenticate"));
    else failures.push(`the server answered ${probe.status} without a token, not 401`);
  } catch (error) {
    throw new AppError(
      ErrorCode.UPSTREAM_UNAVAILABLE,
      `Could not reach the upstream at ${url.origin} to discover its authorization server: ${error instanceof Error ? error.message : String(error)}`,
    );
  }

  const candidates: string[] = [];
  if (challenge.resource_metadata) candidates.push(new URL(challenge.resource_metadata, url).toString());
  const path = url.pathname.replace(/\/+$/, "");
  if (path) candidates.push(`${url.origin}/.well-known/oauth-protected-resource${path}`);
  candidates.push(`${url.origin}/.well-known/oauth-protected-resource`);

  for (const candidate of [...new Set(candidates)]) {
    let body: unknown;
    try {
      const res = await doFetch(candidate, {
        headers: { accept: "application/json" },
        signal: AbortSignal.timeout(opts.timeoutMs),
      });
      if (!res.ok) {
        await res.body?.cancel().catch(() => {});
        failures.push(`${candidate}: HTTP ${res.status}`);
        continue;
      }
      body = await res.json();
    } catch (error) {
      failures.push(`${candidate}: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    }
    const parsed = MetadataSchema.safeParse(body);
    if (!parsed.success) {
      failures.push(
        `${candidate}: not protected resource metadata (${parsed.error.issues[0]?.message ?? "invalid"})`,
      );
      continue;
    }
    const meta = parsed.data;
    if (!denotes(meta.resource, url)) {
      // RFC 9728 section 3.3: metadata for another resource must not be used.
      throw new AppError(
        ErrorCode.UNPROCESSABLE,
        `The protected resource metadata at ${candidate} is for ${meta.resource}, not for the upstream ${url.toString()}`,
      );
    }
    return {
      resource: meta.resource,
      authorizationServers: meta.authorization_servers,
      scopesSupported: meta.scopes_supported ?? [],
      challengeScopes: challenge.scope ? challenge.scope.split(/\s+/).filter(Boolean) : [],
      metadataUrl: candidate,
    };
  }
  throw new AppError(
    ErrorCode.UNPROCESSABLE,
    `The upstream ${url.toString()} publishes no OAuth protected resource metadata (RFC 9728): ${failures.join("; ")}. Use auth mode oauth-authorization-code with an OAuth client instead.`,
  );
}

/** True when `resource` identifies the server at `url`: same origin, and a prefix of its path. */
function denotes(resource: string, url: URL): boolean {
  let r: URL;
  try {
    r = new URL(resource);
  } catch {
    return false;
  }
  if (r.origin !== url.origin) return false;
  const rp = r.pathname.replace(/\/+$/, "");
  const up = url.pathname.replace(/\/+$/, "");
  return up === rp || up.startsWith(`${rp}/`);
}
