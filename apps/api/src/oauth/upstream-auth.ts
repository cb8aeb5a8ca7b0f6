import type { Prisma, Upstream } from "@gatehouse/db";
import {
  AppError,
  ErrorCode,
  isOAuthAuthMode,
  type OAuthAuthConfig,
  readOAuthAuthConfig,
  type UpstreamAuthOAuth,
} from "@gatehouse/shared";
import { isUuid } from "../common/pagination.js";

// The upstreams service stores and shows the OAuth auth modes through these three functions.

/** Prisma filter for a tenant's OAuth client named by its name or its id. */
export function oauthClientRef(tenantId: string, ref: string): Prisma.OAuthClientWhereInput {
  return { tenantId, ...(isUuid(ref) ? { OR: [{ id: ref }, { name: ref }] } : { name: ref }) };
}

/**
 * The columns of an OAuth `auth` (`oauthClientId`, `authConfig`), or null for other modes.
 * `auth.oauthClient` (name or id within the tenant) is resolved, or VALIDATION_FAILED names it.
 * What mcp-oauth discovered (its client, resource, authorization server) is kept while the
 * upstream keeps its URL and no other client is named.
 */
export async function oauthColumns(
  db: Pick<Prisma.TransactionClient, "oAuthClient">,
  tenantId: string,
  auth: { mode: string },
  url: string | null,
  previous?: Pick<Upstream, "authMode" | "authConfig" | "oauthClientId" | "url"> | null,
): Promise<{ oauthClientId: string | null; authConfig: Prisma.InputJsonObject } | null> {
  if (!isOAuthAuthMode(auth.mode)) return null;
  const oauth = auth as UpstreamAuthOAuth;
  let oauthClientId: string | null = null;
  if (oauth.oauthClient) {
    const ref = oauth.oauthClient;
    const client = await db.oAuthClient.findFirst({
      where: oauthClientRef(tenantId, ref),
      select: { id: true },
    });
    if (!client) {
      throw new AppError(ErrorCode.VALIDATION_FAILED, "Invalid request body: check auth.oauthClient", [
        {
          path: "auth.oauthClient",
          message: `No OAuth client '${ref}' in this tenant; create it under /oauth-clients first`,
        },
      ]);
    }
    oauthClientId = client.id;
  }
  const config: OAuthAuthConfig = {};
  if (oauth.scopes) config.scopes = oauth.scopes;
  if ("resource" in oauth && oauth.resource) config.resource = oauth.resource;
  if ("perUser" in oauth && oauth.perUser) config.perUser = true;
  if (oauth.mode === "mcp-oauth") {
    if (oauth.grant) config.grant = oauth.grant;
    const before = previous ? readOAuthAuthConfig(previous.authConfig) : {};
    const keep =
      previous?.authMode === "mcp-oauth" &&
      previous.url === url &&
      (oauthClientId === null || oauthClientId === previous.oauthClientId);
    if (keep) {
      oauthClientId = previous.oauthClientId;
      if (before.resource) config.resource = before.resource;
      if (before.authorizationServer) config.authorizationServer = before.authorizationServer;
      if (before.registration) config.registration = before.registration;
    }
  }
  return { oauthClientId, authConfig: config as Prisma.InputJsonObject };
}

/** The `auth` object of a stored OAuth upstream (as the API shows it and PATCH merges it). */
export function oauthAuthFromRow(
  row: Pick<Upstream, "authMode" | "authConfig" | "oauthClientId">,
): UpstreamAuthOAuth {
  const c = readOAuthAuthConfig(row.authConfig);
  const scopes = c.scopes ? { scopes: c.scopes } : {};
  if (row.authMode === "oauth-client-credentials") {
    return {
      mode: "oauth-client-credentials",
      oauthClient: row.oauthClientId ?? "",
      ...scopes,
      ...(c.resource ? { resource: c.resource } : {}),
    };
  }
  if (row.authMode === "oauth-authorization-code") {
    return {
      mode: "oauth-authorization-code",
      oauthClient: row.oauthClientId ?? "",
      ...scopes,
      ...(c.resource ? { resource: c.resource } : {}),
      ...(c.perUser ? { perUser: true } : {}),
    };
  }
  return {
    mode: "mcp-oauth",
    ...(row.oauthClientId ? { oauthClient: row.oauthClientId } : {}),
    ...(c.grant ? { grant: c.grant } : {}),
    ...scopes,
    ...(c.perUser ? { perUser: true } : {}),
  };
}
