import { createHash } from "node:crypto";
import type { OAuthClient, PrismaClient, Upstream } from "@gatehouse/db";
import { AppError, ErrorCode, oauthGrantOf, readOAuthAuthConfig } from "@gatehouse/shared";
import { openConnectTicket, type Sealer } from "@gatehouse/shared/node";
import { Inject, Injectable } from "@nestjs/common";
import * as oidc from "openid-client";
import type { Logger } from "pino";
import { LOGGER, PRISMA, SEALER } from "../common/tokens.js";
import { CredentialsService, scopesFor, tokenRequestParams, toTokenSet } from "./credentials.service.js";
import { McpOAuthService } from "./mcp-oauth.service.js";
import { isAllowedReturnTo, type OAuthSettings } from "./oauth.config.js";
import { OAUTH_SERVERS, OAUTH_SETTINGS } from "./oauth.tokens.js";
import { describeOAuthError } from "./oauth-errors.js";
import type { OAuthServers } from "./oauth-servers.js";

/** How long a person has between opening the authorization URL and coming back. */
const STATE_TTL_MS = 10 * 60_000;

export interface ConnectStart {
  authorizationUrl: string;
  expiresAt: string;
}

export interface ConnectResult {
  tenantId: string;
  upstream: string;
  subject: string;
  returnTo: string | null;
}

type UpstreamWithClient = Upstream & { oauthClient: OAuthClient | null };

const hashState = (state: string) => createHash("sha256").update(state).digest("hex");

/**
 * The authorization code flow that connects a person's account to an upstream (RFC 6749 with
 * PKCE S256 and `state`; RFC 8707 `resource` when the upstream has one). The state is stored
 * only as a hash and the code verifier sealed, both single-use and short-lived.
 */
@Injectable()
export class ConnectService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(SEALER) private readonly sealer: Sealer,
    @Inject(OAUTH_SERVERS) private readonly servers: OAuthServers,
    @Inject(OAUTH_SETTINGS) private readonly settings: OAuthSettings,
    @Inject(CredentialsService) private readonly credentials: CredentialsService,
    @Inject(McpOAuthService) private readonly mcp: McpOAuthService,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  /** Starts a connect flow for `subject` ("" for a shared upstream); returns where to send the person. */
  async start(
    upstream: UpstreamWithClient,
    opts: { subject?: string | undefined; returnTo?: string | undefined; createdBy: string },
  ): Promise<ConnectStart> {
    const config = readOAuthAuthConfig(upstream.authConfig);
    if (upstream.authMode !== "oauth-authorization-code" && upstream.authMode !== "mcp-oauth") {
      throw new AppError(
        ErrorCode.UNPROCESSABLE,
        `Upstream ${upstream.name} uses auth mode ${upstream.authMode}; only oauth-authorization-code and mcp-oauth upstreams are connected by a person`,
      );
    }
    if (oauthGrantOf(upstream.authMode, config) === "client_credentials") {
      throw new AppError(
        ErrorCode.UNPROCESSABLE,
        `Upstream ${upstream.name} gets its tokens with the client credentials grant; there is nothing to connect`,
      );
    }
    if (opts.returnTo !== undefined && !isAllowedReturnTo(this.settings, opts.returnTo)) {
      throw new AppError(ErrorCode.VALIDATION_FAILED, "Invalid request body: check returnTo", [
        {
          path: "returnTo",
          message: `Must be a URL on this API or the console (${[...this.settings.returnToOrigins].join(", ")})`,
        },
      ]);
    }
    const subject = opts.subject ?? "";
    if (config.perUser && !subject) {
      throw new AppError(
        ErrorCode.VALIDATION_FAILED,
        `Upstream ${upstream.name} is per-user: name the principal`,
        [
          {
            path: "subject",
            message: "Required for per-user upstreams (e.g. key:<api key id> or sub:<subject>)",
          },
        ],
      );
    }
    if (!config.perUser && subject) {
      throw new AppError(ErrorCode.VALIDATION_FAILED, `Upstream ${upstream.name} has one shared credential`, [
        { path: "subject", message: "Only per-user upstreams take a subject" },
      ]);
    }

    let target = upstream;
    let client = upstream.oauthClient;
    if (upstream.authMode === "mcp-oauth") {
      const ensured = await this.mcp.ensure(upstream);
      target = { ...ensured.upstream, oauthClient: ensured.client };
      client = ensured.client;
    }
    if (!client) {
      throw new AppError(
        ErrorCode.UNPROCESSABLE,
        `Upstream ${upstream.name} has no OAuth client; set auth.oauthClient`,
      );
    }
    const server = await this.servers.configuration(client);
    const meta = server.serverMetadata();
    if (!meta.authorization_endpoint) {
      throw new AppError(
        ErrorCode.UNPROCESSABLE,
        `The OAuth client ${client.name} has no authorization endpoint (give one, or an issuer that publishes it)`,
      );
    }

    const state = oidc.randomState();
    const verifier = oidc.randomPKCECodeVerifier();
    const challenge = await oidc.calculatePKCECodeChallenge(verifier);
    const extra = Object.fromEntries(
      Object.entries((client.extraParams ?? {}) as Record<string, unknown>).filter(
        (e): e is [string, string] => typeof e[1] === "string",
      ),
    );
    const scopes = [...scopesFor(target, client)];
    // Ask for a refresh token where the server models it as a scope (OpenID Connect).
    if (meta.scopes_supported?.includes("offline_access") && !scopes.includes("offline_access")) {
      scopes.push("offline_access");
    }
    const params: Record<string, string> = {
      ...extra,
      ...tokenRequestParams(target, client),
      redirect_uri: this.settings.callbackUrl,
      response_type: "code",
      code_challenge: challenge,
      code_challenge_method: "S256",
      state,
      ...(scopes.length ? { scope: scopes.join(" ") } : {}),
    };
    // OpenID Connect grants offline_access only with consent.
    if (scopes.includes("offline_access") && !params.prompt) params.prompt = "consent";

    const expiresAt = new Date(Date.now() + STATE_TTL_MS);
    await this.prisma.oAuthState.create({
      data: {
        tenantId: upstream.tenantId,
        upstreamId: upstream.id,
        subject,
        stateHash: hashState(state),
        codeVerifierSealed: this.sealer.seal(verifier),
        redirectUri: this.settings.callbackUrl,
        returnTo: opts.returnTo ?? null,
        createdBy: opts.createdBy,
        expiresAt,
      },
    });
    return {
      authorizationUrl: oidc.buildAuthorizationUrl(server, params).toString(),
      expiresAt: expiresAt.toISOString(),
    };
  }

  /** Starts a connect flow from a reconnect link (`GET /v1/oauth/connect?ticket=…`). */
  async startFromTicket(sealedTicket: string): Promise<ConnectStart> {
    const ticket = openConnectTicket(this.sealer, sealedTicket);
    if (!ticket) {
      throw new AppError(
        ErrorCode.VALIDATION_FAILED,
        "This connect link is invalid or has expired. Call the tool again to get a fresh link.",
      );
    }
    // A link connects its principal's own per-user credential, nothing shared (that is a tenant
    // admin's POST …/connect), and works once: the first to open it records its nonce.
    if (ticket.subject === "") {
      throw new AppError(
        ErrorCode.FORBIDDEN,
        "A shared upstream account is connected by a tenant admin (POST /v1/tenants/{tenant}/upstreams/{name}/connect), not by a link.",
      );
    }
    const used = await this.prisma.connectTicketUse
      .create({ data: { nonceHash: hashState(`ticket:${ticket.nonce}`), expiresAt: new Date(ticket.exp) } })
      .then(() => false)
      .catch(() => true);
    if (used) {
      throw new AppError(
        ErrorCode.VALIDATION_FAILED,
        "This connect link was already used. Call the tool again to get a fresh link.",
      );
    }
    const upstream = await this.prisma.upstream.findFirst({
      where: { id: ticket.upstreamId, tenantId: ticket.tenantId },
      include: { oauthClient: true },
    });
    if (!upstream)
      throw new AppError(ErrorCode.NOT_FOUND, "The upstream of this connect link no longer exists");
    if (!readOAuthAuthConfig(upstream.authConfig).perUser) {
      throw new AppError(
        ErrorCode.FORBIDDEN,
        `Upstream ${upstream.name} now has one shared account; a tenant admin connects it.`,
      );
    }
    return this.start(upstream, {
      subject: ticket.subject,
      createdBy: `connect-link:${ticket.subject || "shared"}`,
    });
  }

  /** The callback: checks state, redeems the code with the PKCE verifier, stores the tokens sealed. */
  async complete(query: URLSearchParams): Promise<ConnectResult> {
    const state = query.get("state");
    if (!state) throw new AppError(ErrorCode.VALIDATION_FAILED, "The callback has no state parameter");
    // Single use: whoever deletes the row owns the flow.
    const row = await this.prisma.oAuthState
      .delete({ where: { stateHash: hashState(state) } })
      .catch(() => null);
    if (!row) {
      throw new AppError(
        ErrorCode.VALIDATION_FAILED,
        "Unknown or already used authorization state. Start the connection again.",
      );
    }
    if (row.expiresAt.getTime() < Date.now()) {
      throw new AppError(
        ErrorCode.VALIDATION_FAILED,
        "The authorization took too long and expired. Start the connection again.",
      );
    }
    const upstream = await this.prisma.upstream.findFirst({
      where: { id: row.upstreamId, tenantId: row.tenantId },
      include: { oauthClient: true },
    });
    if (!upstream?.oauthClient) {
      throw new AppError(
        ErrorCode.NOT_FOUND,
        "The upstream (or its OAuth client) was removed during the authorization",
      );
    }
    const error = query.get("error");
    if (error) {
      const description = query.get("error_description");
      throw new AppError(
        ErrorCode.UNPROCESSABLE,
        `The authorization server refused: ${error}${description ? `: ${description}` : ""}`,
      );
    }
    const server = await this.servers.configuration(upstream.oauthClient);
    const currentUrl = new URL(row.redirectUri);
    currentUrl.search = query.toString();
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(
        server,
        currentUrl,
        { pkceCodeVerifier: this.sealer.unseal(row.codeVerifierSealed), expectedState: state },
        tokenRequestParams(upstream, upstream.oauthClient),
      );
    } catch (err) {
      const failure = describeOAuthError(err);
      throw new AppError(
        ErrorCode.UNPROCESSABLE,
        `Could not redeem the authorization code: ${failure.message}`,
      );
    }
    const credential = await this.credentials.storeTokens(upstream, row.subject, toTokenSet(tokens));
    this.log.info(
      {
        tenantId: upstream.tenantId,
        upstream: upstream.name,
        subject: row.subject,
        credentialId: credential.id,
      },
      "upstream account connected",
    );
    await this.prisma.auditEvent
      .create({
        data: {
          tenantId: upstream.tenantId,
          kind: "admin",
          actor: row.createdBy,
          upstream: upstream.name,
          outcome: "connected",
          details: {
            event: "upstream_credential.connected",
            credentialId: credential.id,
            subject: row.subject,
            hasRefreshToken: credential.refreshTokenSealed !== null,
          },
        },
      })
      .catch((err: unknown) => this.log.error({ err }, "could not write the connected audit event"));
    return {
      tenantId: upstream.tenantId,
      upstream: upstream.name,
      subject: row.subject,
      // Checked again here: a flow started before returnTo was restricted may still be stored.
      returnTo: row.returnTo && isAllowedReturnTo(this.settings, row.returnTo) ? row.returnTo : null,
    };
  }

  /** Drops connect states nobody came back for. */
  async purgeExpired(): Promise<number> {
    const { count } = await this.prisma.oAuthState.deleteMany({ where: { expiresAt: { lt: new Date() } } });
    await this.prisma.connectTicketUse.deleteMany({ where: { expiresAt: { lt: new Date() } } });
    return count;
  }
}
