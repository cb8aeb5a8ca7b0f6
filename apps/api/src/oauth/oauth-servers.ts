import type { OAuthClient } from "@gatehouse/db";
import { AppError, ErrorCode } from "@gatehouse/shared";
import type { Sealer } from "@gatehouse/shared/node";
import * as oidc from "openid-client";
import type { OAuthSettings } from "./oauth.config.js";

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);
const CACHE_TTL_MS = 10 * 60_000;

/** The OAuth client fields that decide how to talk to its authorization server. */
export type OAuthClientLike = Pick<
  OAuthClient,
  | "id"
  | "issuer"
  | "authorizationEndpoint"
  | "tokenEndpoint"
  | "clientId"
  | "clientSecretSealed"
  | "authMethod"
  | "updatedAt"
>;

/**
 * openid-client `Configuration`s for the tenants' OAuth clients: discovered from the issuer
 * (OpenID Connect discovery, then RFC 8414) or built from explicit endpoints, cached for a while.
 * Plain http is allowed on loopback only, unless OAUTH_ALLOW_HTTP=true.
 */
export class OAuthServers {
  private readonly cache = new Map<string, { at: number; config: Promise<oidc.Configuration> }>();

  constructor(
    private readonly sealer: Sealer,
    private readonly settings: OAuthSettings,
  ) {}

  /** The configuration for one OAuth client; discovery failures become UNPROCESSABLE. */
  configuration(client: OAuthClientLike): Promise<oidc.Configuration> {
    const key = `${client.id}:${client.updatedAt.getTime()}`;
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < CACHE_TTL_MS) return hit.config;
    const config = this.build(client);
    this.cache.set(key, { at: Date.now(), config });
    config.catch(() => this.cache.delete(key));
    return config;
  }

  /** Authorization server metadata of an issuer (for validating a new OAuth client). */
  async discover(issuer: string): Promise<oidc.ServerMetadata> {
    const config = await this.discoverConfig(issuer, "unused", undefined, oidc.None());
    return config.serverMetadata();
  }

  /** Options for openid-client calls: timeouts and, where allowed, plain http. */
  requestOptions(...urls: Array<string | null | undefined>): {
    execute: Array<(c: oidc.Configuration) => void>;
  } {
    return { execute: urls.some((u) => u && this.insecure(u)) ? [oidc.allowInsecureRequests] : [] };
  }

  /** Throws unless the URL is https, or http where allowed. */
  assertAllowed(url: string, what: string): void {
    this.insecure(url, what);
  }

  private async build(client: OAuthClientLike): Promise<oidc.Configuration> {
    const secret = client.clientSecretSealed ? this.sealer.unseal(client.clientSecretSealed) : undefined;
    const auth = clientAuth(client.authMethod, secret);
    const metadata: Partial<oidc.ClientMetadata> = {
      token_endpoint_auth_method: client.authMethod,
      ...(secret ? { client_secret: secret } : {}),
    };
    let config: oidc.Configuration;
    if (client.issuer) {
      config = await this.discoverConfig(client.issuer, client.clientId, metadata, auth);
      if (client.authorizationEndpoint || client.tokenEndpoint) {
        // Explicit endpoints win over discovered ones.
        const { supportsPKCE: _helper, ...discovered } = config.serverMetadata();
        const server: oidc.ServerMetadata = {
          ...discovered,
          ...(client.authorizationEndpoint ? { authorization_endpoint: client.authorizationEndpoint } : {}),
          ...(client.tokenEndpoint ? { token_endpoint: client.tokenEndpoint } : {}),
        };
        config = new oidc.Configuration(server, client.clientId, metadata, auth);
      }
    } else {
      if (!client.tokenEndpoint) {
        throw new AppError(
          ErrorCode.UNPROCESSABLE,
          "The OAuth client has neither an issuer nor a token endpoint",
        );
      }
      const server: oidc.ServerMetadata = {
        issuer: new URL(client.tokenEndpoint).origin,
        token_endpoint: client.tokenEndpoint,
        ...(client.authorizationEndpoint ? { authorization_endpoint: client.authorizationEndpoint } : {}),
      };
      config = new oidc.Configuration(server, client.clientId, metadata, auth);
    }
    const meta = config.serverMetadata();
    for (const url of [meta.token_endpoint, meta.authorization_endpoint, client.issuer]) {
      if (url && this.insecure(url, "endpoint")) oidc.allowInsecureRequests(config);
    }
    config.timeout = Math.ceil(this.settings.httpTimeoutMs / 1000);
    return config;
  }

  private async discoverConfig(
    issuer: string,
    clientId: string,
    metadata: Partial<oidc.ClientMetadata> | undefined,
    auth: oidc.ClientAuth,
  ): Promise<oidc.Configuration> {
    const options = {
      ...this.requestOptions(issuer),
      timeout: Math.ceil(this.settings.httpTimeoutMs / 1000),
    };
    const errors: string[] = [];
    // OpenID Connect discovery first (most providers), then RFC 8414 (path-inserted well-known).
    for (const algorithm of ["oidc", "oauth2"] as const) {
      try {
        return await oidc.discovery(new URL(issuer), clientId, metadata, auth, { ...options, algorithm });
      } catch (error) {
        errors.push(`${algorithm === "oidc" ? "OpenID Connect" : "RFC 8414"} discovery: ${errorText(error)}`);
      }
    }
    throw new AppError(
      ErrorCode.UNPROCESSABLE,
      `Could not discover the authorization server at ${issuer} (${errors.join("; ")}). Check the issuer URL, or give explicit endpoints.`,
    );
  }

  /** True for http URLs that are allowed; throws for http URLs that are not. */
  private insecure(url: string, what = "URL"): boolean {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new AppError(ErrorCode.UNPROCESSABLE, `Invalid ${what}: ${url}`);
    }
    if (parsed.protocol === "https:") return false;
    if (parsed.protocol === "http:" && (LOOPBACK.has(parsed.hostname) || this.settings.allowHttp))
      return true;
    throw new AppError(
      ErrorCode.UNPROCESSABLE,
      `The ${what} ${parsed.origin} is not https. Plain http is allowed only on loopback, or with OAUTH_ALLOW_HTTP=true.`,
    );
  }
}

export function clientAuth(method: string, secret: string | undefined): oidc.ClientAuth {
  switch (method) {
    case "none":
      return oidc.None();
    case "client_secret_post":
      return oidc.ClientSecretPost(secret);
    default:
      return oidc.ClientSecretBasic(secret);
  }
}

function errorText(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}
