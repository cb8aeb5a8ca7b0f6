import type { PrismaClient, User } from "@gatehouse/db";
import {
  AppError,
  type AuthMe,
  type AuthProviders,
  ErrorCode,
  OIDC_STATE_COOKIE,
  type SignedIn,
} from "@gatehouse/shared";
import { type Sealer, safeEqual } from "@gatehouse/shared/node";
import { Inject, Injectable } from "@nestjs/common";
import * as oidc from "openid-client";
import type { Logger } from "pino";
import type { Caller } from "../common/caller.js";
import { iso } from "../common/pagination.js";
import { API_CONFIG, LOGGER, PRISMA, SEALER } from "../common/tokens.js";
import type { ApiConfig } from "../config/api.config.js";
import { type ActiveSession, SessionsService } from "./sessions.service.js";

/** The identity the bootstrap sign-in (ADMIN_TOKEN) signs in as. */
const BOOTSTRAP_ISSUER = "gatehouse:admin-token";
const BOOTSTRAP_SUBJECT = "platform-admin";
const OIDC_FLOW_TTL_MS = 10 * 60_000;
const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

/** What the short-lived OIDC cookie carries, sealed (AES-256-GCM): it can be neither read nor forged. */
interface OidcFlow {
  k: "console-oidc";
  state: string;
  nonce: string;
  verifier: string;
  returnTo: string | null;
  exp: number;
}

export interface SignInResult {
  body: SignedIn;
  cookies: string[];
}

/**
 * Console sign-in: the embedded bootstrap (ADMIN_TOKEN → platform admin session) and the platform
 * OpenID Connect issuer (authorization code + PKCE, state and nonce, with openid-client). On every
 * OIDC sign-in the user's platform-admin flag is recomputed from CONSOLE_PLATFORM_ADMINS and
 * pending invitations for the verified email are bound to the user.
 */
@Injectable()
export class AuthService {
  private oidcConfig: Promise<oidc.Configuration> | undefined;

  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    @Inject(SEALER) private readonly sealer: Sealer,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(SessionsService) private readonly sessions: SessionsService,
  ) {}

  providers(): AuthProviders {
    const { oidc: o, bootstrap } = this.sessions.settings;
    return { bootstrap, oidc: { enabled: o !== null, issuer: o?.issuer ?? null } };
  }

  async bootstrap(token: string, userAgent: string | undefined): Promise<SignInResult> {
    if (!this.sessions.settings.bootstrap) {
      throw new AppError(
        ErrorCode.FORBIDDEN,
        "Sign-in with the admin token is off here (CONSOLE_BOOTSTRAP_SIGNIN=false); sign in with your identity provider",
      );
    }
    if (!safeEqual(token, this.config.ADMIN_TOKEN)) {
      throw new AppError(ErrorCode.UNAUTHENTICATED, "That is not the admin token `npm start` printed");
    }
    const user = await this.prisma.user.upsert({
      where: { issuer_subject: { issuer: BOOTSTRAP_ISSUER, subject: BOOTSTRAP_SUBJECT } },
      create: {
        issuer: BOOTSTRAP_ISSUER,
        subject: BOOTSTRAP_SUBJECT,
        name: "Platform admin",
        platformAdmin: true,
        lastSignInAt: new Date(),
      },
      update: { platformAdmin: true, lastSignInAt: new Date() },
    });
    return this.signIn(user, userAgent, null);
  }

  /** The IdP's authorization URL, and the sealed cookie that the callback must bring back. */
  async oidcStart(returnTo: string | undefined): Promise<{ authorizationUrl: string; cookie: string }> {
    const { config, settings } = await this.oidc();
    const flow: OidcFlow = {
      k: "console-oidc",
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      verifier: oidc.randomPKCECodeVerifier(),
      returnTo: returnTo ?? null,
      exp: Date.now() + OIDC_FLOW_TTL_MS,
    };
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.sessions.settings.redirectUri,
      scope: settings.scopes,
      code_challenge: await oidc.calculatePKCECodeChallenge(flow.verifier),
      code_challenge_method: "S256",
      state: flow.state,
      nonce: flow.nonce,
    });
    return {
      authorizationUrl: url.href,
      cookie: this.sessions.cookieString(
        OIDC_STATE_COOKIE,
        this.sealer.sealJson(flow),
        Math.floor(OIDC_FLOW_TTL_MS / 1000),
      ),
    };
  }

  /** Completes the code flow with the query the IdP sent to the console's callback page. */
  async oidcCallback(
    query: string,
    sealedFlow: string | undefined,
    userAgent: string | undefined,
  ): Promise<SignInResult> {
    const { config } = await this.oidc();
    const flow = this.openFlow(sealedFlow);
    const callback = new URL(this.sessions.settings.redirectUri);
    callback.search = query.startsWith("?") ? query : `?${query}`;
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: flow.verifier,
        expectedState: flow.state,
        expectedNonce: flow.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      this.log.info({ err: { message: (err as Error).message } }, "console OIDC sign-in failed");
      throw new AppError(
        ErrorCode.UNAUTHENTICATED,
        `Sign-in with the identity provider failed: ${(err as Error).message}. Start the sign-in again.`,
      );
    }
    const idClaims = tokens.claims();
    if (!idClaims) throw new AppError(ErrorCode.UNAUTHENTICATED, "The identity provider sent no ID token");
    let claims: Record<string, unknown> = idClaims;
    // Many providers put email and name only in userinfo for the code flow (OIDC Core 5.4).
    if (idClaims.email === undefined && tokens.access_token) {
      try {
        const info = await oidc.fetchUserInfo(config, tokens.access_token, String(idClaims.sub));
        claims = { ...info, ...idClaims };
      } catch (err) {
        this.log.info({ err: { message: (err as Error).message } }, "console OIDC: userinfo unavailable");
      }
    }
    const issuer = String(claims.iss);
    const subject = String(claims.sub);
    const email =
      typeof claims.email === "string" && claims.email_verified === true ? claims.email.toLowerCase() : null;
    const name = typeof claims.name === "string" ? claims.name.slice(0, 200) : null;
    const { emails, subjects } = this.sessions.settings.platformAdmins;
    const platformAdmin = subjects.has(subject) || (email !== null && emails.has(email));
    const now = new Date();
    const user = await this.prisma.user.upsert({
      where: { issuer_subject: { issuer, subject } },
      create: { issuer, subject, email, name, platformAdmin, lastSignInAt: now },
      update: { email, name: name ?? undefined, platformAdmin, lastSignInAt: now },
    });
    if (email) await this.bindInvitations(user.id, email, now);
    const result = await this.signIn(user, userAgent, flow.returnTo);
    // The flow cookie is single-use.
    result.cookies.push(this.sessions.cookieString(OIDC_STATE_COOKIE, "", 0));
    return result;
  }

  async me(caller: Caller, session: ActiveSession | null): Promise<AuthMe> {
    if (caller.kind === "platform") {
      return { kind: "platform-token", user: null, platformAdmin: true, memberships: [], session: null };
    }
    if (caller.kind === "tenant") {
      const tenant = await this.prisma.tenant.findUnique({ where: { id: caller.tenantId } });
      return {
        kind: "tenant-token",
        user: null,
        platformAdmin: false,
        memberships: tenant
          ? [{ tenant: { id: tenant.id, slug: tenant.slug, name: tenant.name }, role: caller.role }]
          : [],
        session: null,
      };
    }
    const members = await this.prisma.member.findMany({
      where: { userId: caller.userId },
      include: { tenant: { select: { id: true, slug: true, name: true } } },
      orderBy: { tenant: { slug: "asc" } },
      take: 200,
    });
    const user =
      session?.user ?? (await this.prisma.user.findUniqueOrThrow({ where: { id: caller.userId } }));
    return {
      kind: "session",
      user: { id: user.id, email: user.email, name: user.name },
      platformAdmin: caller.platformAdmin,
      memberships: members.map((m) => ({ tenant: m.tenant, role: m.role })),
      session: session
        ? {
            expiresAt: iso(session.expiresAt),
            idleExpiresAt: iso(session.idleExpiresAt),
            csrfToken: this.sessions.csrfToken(session.id),
          }
        : null,
    };
  }

  private async bindInvitations(userId: string, email: string, now: Date): Promise<void> {
    // Only invitations of tenants where this user has no membership yet (one member per user and tenant).
    const pending = await this.prisma.member.findMany({
      where: { email, userId: null },
      select: { id: true, tenantId: true },
    });
    for (const invitation of pending) {
      const taken = await this.prisma.member.findUnique({
        where: { tenantId_userId: { tenantId: invitation.tenantId, userId } },
        select: { id: true },
      });
      if (!taken) {
        await this.prisma.member.updateMany({
          where: { id: invitation.id, userId: null },
          data: { userId, joinedAt: now },
        });
      }
    }
  }

  private async signIn(
    user: User,
    userAgent: string | undefined,
    returnTo: string | null,
  ): Promise<SignInResult> {
    const { token, session } = await this.sessions.create(user.id, userAgent);
    return {
      body: {
        user: { id: user.id, email: user.email, name: user.name },
        platformAdmin: user.platformAdmin,
        csrfToken: this.sessions.csrfToken(session.id),
        expiresAt: iso(session.expiresAt),
        returnTo,
      },
      cookies: [this.sessions.cookie(token)],
    };
  }

  private openFlow(sealed: string | undefined): OidcFlow {
    let flow: OidcFlow | null = null;
    try {
      flow = sealed ? this.sealer.unsealJson<OidcFlow>(sealed) : null;
    } catch {
      flow = null;
    }
    if (flow?.k !== "console-oidc" || typeof flow.exp !== "number" || flow.exp < Date.now()) {
      throw new AppError(
        ErrorCode.UNAUTHENTICATED,
        "The sign-in took too long or was started in another browser; start it again",
      );
    }
    return flow;
  }

  private async oidc(): Promise<{
    config: oidc.Configuration;
    settings: NonNullable<SessionsService["settings"]["oidc"]>;
  }> {
    const settings = this.sessions.settings.oidc;
    if (!settings) {
      throw new AppError(
        ErrorCode.NOT_FOUND,
        "OpenID Connect sign-in is not configured: set CONSOLE_OIDC_ISSUER, CONSOLE_OIDC_CLIENT_ID and CONSOLE_OIDC_CLIENT_SECRET",
      );
    }
    if (!this.oidcConfig) {
      const issuer = new URL(settings.issuer);
      const insecure = issuer.protocol === "http:";
      if (insecure && !LOOPBACK.has(issuer.hostname) && this.config.OAUTH_ALLOW_HTTP !== "true") {
        throw new AppError(
          ErrorCode.UNPROCESSABLE,
          `CONSOLE_OIDC_ISSUER ${issuer.origin} is not https. Plain http is allowed only on loopback, or with OAUTH_ALLOW_HTTP=true.`,
        );
      }
      this.oidcConfig = oidc.discovery(
        issuer,
        settings.clientId,
        settings.clientSecret,
        settings.clientSecret ? oidc.ClientSecretBasic(settings.clientSecret) : oidc.None(),
        { execute: insecure ? [oidc.allowInsecureRequests] : [], timeout: 10 },
      );
      // A failed discovery is retried on the next sign-in.
      this.oidcConfig.catch(() => {
        this.oidcConfig = undefined;
      });
    }
    try {
      return { config: await this.oidcConfig, settings };
    } catch (err) {
      throw new AppError(
        ErrorCode.SERVICE_UNAVAILABLE,
        `Could not reach the identity provider at ${settings.issuer}: ${(err as Error).message}`,
      );
    }
  }
}
