import { randomBytes } from "node:crypto";
import type { OAuthClient, Prisma, PrismaClient, Upstream } from "@gatehouse/db";
import {
  AppError,
  ErrorCode,
  type OAuthAuthConfig,
  oauthGrantOf,
  readOAuthAuthConfig,
} from "@gatehouse/shared";
import type { Sealer } from "@gatehouse/shared/node";
import { Inject, Injectable } from "@nestjs/common";
import * as oidc from "openid-client";
import type { Logger } from "pino";
import { LOGGER, PRISMA, SEALER } from "../common/tokens.js";
import { discoverProtectedResource } from "./mcp-discovery.js";
import type { OAuthSettings } from "./oauth.config.js";
import { OAUTH_SERVERS, OAUTH_SETTINGS } from "./oauth.tokens.js";
import type { OAuthServers } from "./oauth-servers.js";

export interface McpOAuthClient {
  upstream: Upstream;
  client: OAuthClient;
}

/**
 * The `mcp-oauth` mode: finds the upstream's authorization server from its 401 (RFC 9728), then
 * the client to use there, in the MCP spec's order of preference: a pre-registered client
 * (`auth.oauthClient`), a client ID metadata document (our URL as client_id, when the server
 * supports it and the API is on https), or dynamic client registration (RFC 7591). The result is
 * kept: an OAuth client row (secret sealed) and the resource and server in the upstream's
 * `authConfig`, so discovery runs once per upstream.
 */
@Injectable()
export class McpOAuthService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(SEALER) private readonly sealer: Sealer,
    @Inject(OAUTH_SERVERS) private readonly servers: OAuthServers,
    @Inject(OAUTH_SETTINGS) private readonly settings: OAuthSettings,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  /** The upstream (authConfig completed) and its OAuth client; discovers and registers when needed. */
  async ensure(upstream: Upstream & { oauthClient?: OAuthClient | null }): Promise<McpOAuthClient> {
    const config = readOAuthAuthConfig(upstream.authConfig);
    const existing =
      upstream.oauthClient ??
      (upstream.oauthClientId
        ? await this.prisma.oAuthClient.findUnique({ where: { id: upstream.oauthClientId } })
        : null);
    if (existing && config.resource && config.authorizationServer) return { upstream, client: existing };
    if (!upstream.url)
      throw new AppError(ErrorCode.UNPROCESSABLE, `Upstream ${upstream.name} has no URL to discover`);

    const prm = await discoverProtectedResource(upstream.url, { timeoutMs: this.settings.httpTimeoutMs });
    const grant = oauthGrantOf(upstream.authMode, config);
    // A pre-registered client decides the server when it names one the resource trusts.
    const issuer =
      (existing?.issuer && prm.authorizationServers.find((s) => sameIssuer(s, existing.issuer!))) ??
      prm.authorizationServers[0]!;
    this.servers.assertAllowed(issuer, "authorization server");
    const scopes = config.scopes ?? (prm.challengeScopes.length ? prm.challengeScopes : prm.scopesSupported);

    let client: OAuthClient;
    let registration: NonNullable<OAuthAuthConfig["registration"]>;
    if (existing) {
      client =
        existing.issuer || existing.tokenEndpoint ? existing : await this.adoptIssuer(existing, issuer);
      registration = "preregistered";
    } else {
      const server = await this.servers.discover(issuer);
      if (
        server.client_id_metadata_document_supported === true &&
        this.settings.clientMetadataUrl.startsWith("https://")
      ) {
        client = await this.createClient(upstream, {
          issuer,
          clientId: this.settings.clientMetadataUrl,
          authMethod: "none",
          scopes,
        });
        registration = "metadata-document";
      } else if (server.registration_endpoint) {
        // The client may ask only for what it registered: include offline_access (refresh tokens) where modelled.
        const registered =
          grant === "authorization_code" && server.scopes_supported?.includes("offline_access")
            ? [...new Set([...scopes, "offline_access"])]
            : scopes;
        client = await this.register(upstream, issuer, grant, registered);
        registration = "dynamic";
      } else {
        throw new AppError(
          ErrorCode.UNPROCESSABLE,
          `The authorization server ${issuer} of upstream ${upstream.name} supports neither client ID metadata documents nor dynamic client registration. Register a client there, create it under /oauth-clients, and set auth.oauthClient.`,
        );
      }
    }

    const authConfig: OAuthAuthConfig = {
      ...config,
      resource: prm.resource,
      authorizationServer: issuer,
      registration,
    };
    const updated = await this.prisma.upstream.update({
      where: { id: upstream.id },
      data: { oauthClientId: client.id, authConfig: authConfig as Prisma.InputJsonValue },
    });
    this.log.info(
      { tenantId: upstream.tenantId, upstream: upstream.name, issuer, registration, resource: prm.resource },
      "mcp-oauth: authorization server discovered",
    );
    return { upstream: updated, client };
  }

  /** The client ID metadata document served at `/v1/oauth/client-metadata.json`. */
  clientMetadataDocument(): Record<string, unknown> {
    return {
      client_id: this.settings.clientMetadataUrl,
      client_name: "Gatehouse",
      client_uri: this.settings.publicApiUrl,
      redirect_uris: [this.settings.callbackUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }

  private async register(
    upstream: Upstream,
    issuer: string,
    grant: "client_credentials" | "authorization_code",
    scopes: string[],
  ): Promise<OAuthClient> {
    const metadata: Partial<oidc.ClientMetadata> = {
      client_name: `Gatehouse (${upstream.name})`,
      token_endpoint_auth_method: "client_secret_basic",
      ...(grant === "client_credentials"
        ? { grant_types: ["client_credentials"], response_types: [] }
        : {
            grant_types: ["authorization_code", "refresh_token"],
            response_types: ["code"],
            redirect_uris: [this.settings.callbackUrl],
          }),
      ...(scopes.length ? { scope: scopes.join(" ") } : {}),
    };
    const errors: string[] = [];
    for (const algorithm of ["oauth2", "oidc"] as const) {
      try {
        const registered = await oidc.dynamicClientRegistration(new URL(issuer), metadata, undefined, {
          ...this.servers.requestOptions(issuer),
          algorithm,
          timeout: Math.ceil(this.settings.httpTimeoutMs / 1000),
        });
        const info = registered.clientMetadata();
        return this.createClient(upstream, {
          issuer,
          clientId: info.client_id,
          clientSecret: typeof info.client_secret === "string" ? info.client_secret : null,
          authMethod:
            typeof info.token_endpoint_auth_method === "string"
              ? info.token_endpoint_auth_method
              : "client_secret_basic",
          scopes,
        });
      } catch (error) {
        errors.push(error instanceof Error ? error.message : String(error));
      }
    }
    throw new AppError(
      ErrorCode.UNPROCESSABLE,
      `Dynamic client registration at ${issuer} failed for upstream ${upstream.name}: ${errors.join("; ")}`,
    );
  }

  private createClient(
    upstream: Upstream,
    c: {
      issuer: string;
      clientId: string;
      clientSecret?: string | null;
      authMethod: string;
      scopes: string[];
    },
  ): Promise<OAuthClient> {
    const base = `mcp-${upstream.name}`.slice(0, 54);
    return this.prisma.oAuthClient.create({
      data: {
        tenantId: upstream.tenantId,
        name: `${base}-${randomBytes(4).toString("hex")}`,
        issuer: c.issuer,
        clientId: c.clientId,
        clientSecretSealed: c.clientSecret ? this.sealer.seal(c.clientSecret) : null,
        authMethod: c.authMethod,
        scopes: c.scopes,
        extraParams: {},
      },
    });
  }

  private adoptIssuer(client: OAuthClient, issuer: string): Promise<OAuthClient> {
    return this.prisma.oAuthClient.update({ where: { id: client.id }, data: { issuer } });
  }
}

function sameIssuer(a: string, b: string): boolean {
  return a.replace(/\/+$/, "") === b.replace(/\/+$/, "");
}
