import { randomBytes } from "node:crypto";
import { type Bus, BusChannel, type CredentialEvent, CredentialEventSchema } from "../bus.js";
import { AppError, ErrorCode } from "../errors.js";
import {
  credentialSubjectFor,
  isOAuthAuthMode,
  oauthGrantOf,
  readOAuthAuthConfig,
} from "../schemas/upstream-oauth.schema.js";
import type { Sealer } from "./sealing.js";

/** The columns of an `UpstreamCredential` row that a gateway node reads. */
export interface StoredCredential {
  id: string;
  accessTokenSealed: string | null;
  refreshTokenSealed: string | null;
  expiresAt: Date | null;
  status: "active" | "refreshing" | "needs_reconnect" | "error";
  generation: number;
  lastRefreshError: string | null;
}

/** The upstream fields needed to pick and explain a credential (a subset of `UpstreamSnapshot`). */
export interface OAuthUpstreamRef {
  id: string;
  name: string;
  authMode: string;
  authConfig: unknown;
}

/** A usable access token. */
export interface UpstreamAccessToken {
  accessToken: string;
  credentialId: string;
  generation: number;
  /** Epoch ms, or null when the server gave no expiry. */
  expiresAt: number | null;
}

export interface UpstreamTokensOptions {
  bus: Bus;
  sealer: Sealer;
  /**
   * Reads one credential row, e.g.
   * `prisma.upstreamCredential.findUnique({ where: { upstreamId_subject: { upstreamId, subject } } })`.
   */
  load(upstreamId: string, subject: string): Promise<StoredCredential | null>;
  /** Base URL of the REST API (`PUBLIC_API_URL`); reconnect links point at `/v1/oauth/connect` there. */
  apiBaseUrl: string;
  /** How long to wait for a worker to deliver a fresh token (default 15 s). */
  refreshTimeoutMs?: number;
  /** A token this close to its expiry counts as expired (default 1 s). */
  expirySkewMs?: number;
  /** How long a reconnect link stays valid (default 15 min). */
  connectTicketTtlMs?: number;
}

/** What a reconnect link carries, sealed (AES-256-GCM) so it can be neither read nor forged. */
export interface ConnectTicket {
  tenantId: string;
  upstreamId: string;
  /** The per-user credential subject of the principal the link was made for; never "" (shared). */
  subject: string;
  /** Random; the API records it when the link is opened, so each link works once. */
  nonce: string;
  /** Epoch ms. */
  exp: number;
}

/** Seals a reconnect ticket; `GET /v1/oauth/connect?ticket=…` on the API opens it. */
export function sealConnectTicket(sealer: Sealer, ticket: ConnectTicket): string {
  return sealer.sealJson({ k: "connect", ...ticket });
}

/** The reconnect link for a ticket: `GET {apiBaseUrl}/v1/oauth/connect?ticket=…` on the API. */
export function connectLink(
  sealer: Sealer,
  apiBaseUrl: string,
  ref: Omit<ConnectTicket, "exp" | "nonce">,
  ttlMs = 15 * 60_000,
): string {
  const nonce = randomBytes(16).toString("base64url");
  const ticket = sealConnectTicket(sealer, { ...ref, nonce, exp: Date.now() + ttlMs });
  return `${apiBaseUrl.replace(/\/+$/, "")}/v1/oauth/connect?ticket=${encodeURIComponent(ticket)}`;
}

/** Opens a reconnect ticket; null when it is forged, corrupt or expired. */
export function openConnectTicket(sealer: Sealer, sealed: string, now = Date.now()): ConnectTicket | null {
  try {
    const t = sealer.unsealJson<Partial<ConnectTicket> & { k?: string }>(sealed);
    if (t.k !== "connect" || typeof t.tenantId !== "string" || typeof t.upstreamId !== "string") return null;
    if (typeof t.subject !== "string" || typeof t.exp !== "number" || t.exp < now) return null;
    if (typeof t.nonce !== "string" || t.nonce.length < 16) return null;
    return { tenantId: t.tenantId, upstreamId: t.upstreamId, subject: t.subject, nonce: t.nonce, exp: t.exp };
  } catch {
    return null;
  }
}

/**
 * The gateway side of upstream OAuth: hands out the current access token of the credential a
 * call must use (shared, or the calling principal's own for per-user upstreams), keeps tokens in
 * memory, drops them when the bus says they changed, and on a 401 or an expired token asks the
 * workers for one immediate refresh and waits for it.
 *
 * With the v2 SDK client, pass `authProvider(...)` as the transport's `authProvider`: the
 * transport calls `token()` before every request (a refreshed token is used at once, the
 * upstream session stays) and, on a 401, awaits `onUnauthorized()` and retries once.
 */
export class UpstreamTokens {
  private readonly cache = new Map<string, UpstreamAccessToken>();
  private readonly loading = new Map<string, Promise<StoredCredential | null>>();
  private readonly refreshing = new Map<string, Promise<UpstreamAccessToken>>();
  private readonly wakeups = new Map<string, Set<() => void>>();
  private unsubscribe: (() => Promise<void>) | null = null;
  private readonly refreshTimeoutMs: number;
  private readonly expirySkewMs: number;
  private readonly ticketTtlMs: number;

  constructor(private readonly options: UpstreamTokensOptions) {
    this.refreshTimeoutMs = options.refreshTimeoutMs ?? 15_000;
    this.expirySkewMs = options.expirySkewMs ?? 1_000;
    this.ticketTtlMs = options.connectTicketTtlMs ?? 15 * 60_000;
  }

  /** True when calls to this upstream need a token from `UpstreamTokens`. */
  static applies(upstream: { authMode: string }): boolean {
    return isOAuthAuthMode(upstream.authMode);
  }

  /** Subscribes to credential events. Call once before use. */
  async start(): Promise<void> {
    if (this.unsubscribe) return;
    this.unsubscribe = await this.options.bus.subscribe(BusChannel.credentials, (message) =>
      this.onEvent(message),
    );
    // Events may have been missed while disconnected: forget every cached token.
    this.options.bus.onReconnect(() => this.cache.clear());
  }

  async stop(): Promise<void> {
    await this.unsubscribe?.();
    this.unsubscribe = null;
    this.cache.clear();
  }

  /**
   * The access token for a call by `principalId` (the gateway's `Principal.id`). Throws
   * `UPSTREAM_AUTH_REQUIRED` (with `details.connectUrl` when a person can fix it) or
   * `UPSTREAM_UNAVAILABLE` (no fresh token in time).
   */
  async token(
    tenantId: string,
    upstream: OAuthUpstreamRef,
    principalId: string,
  ): Promise<UpstreamAccessToken> {
    const subject = credentialSubjectFor(upstream, principalId);
    const key = this.key(upstream.id, subject);
    const cached = this.cache.get(key);
    if (cached && this.fresh(cached)) return cached;
    this.cache.delete(key);
    const row = await this.read(upstream.id, subject);
    const usable = this.usable(row);
    if (usable) {
      this.cache.set(key, usable);
      return usable;
    }
    return this.refresh(tenantId, upstream, subject, row);
  }

  /**
   * The upstream refused `stale` (HTTP 401): get one fresh token. When another node already
   * refreshed past it, that token is returned without asking the workers again.
   */
  async refreshAfterUnauthorized(
    tenantId: string,
    upstream: OAuthUpstreamRef,
    principalId: string,
    stale: Pick<UpstreamAccessToken, "generation"> | null,
  ): Promise<UpstreamAccessToken> {
    const subject = credentialSubjectFor(upstream, principalId);
    const key = this.key(upstream.id, subject);
    this.cache.delete(key);
    const row = await this.read(upstream.id, subject);
    const usable = this.usable(row);
    if (usable && stale && usable.generation > stale.generation) {
      this.cache.set(key, usable);
      return usable;
    }
    return this.refresh(tenantId, upstream, subject, row, stale?.generation);
  }

  /**
   * An `AuthProvider` for the v2 SDK transports (`{ token, onUnauthorized }`), bound to one
   * upstream and one caller, so a connection never carries another principal's token.
   */
  authProvider(
    tenantId: string,
    upstream: OAuthUpstreamRef,
    principalId: string,
  ): { token(): Promise<string | undefined>; onUnauthorized(): Promise<void> } {
    let last: UpstreamAccessToken | null = null;
    return {
      token: async () => {
        last = await this.token(tenantId, upstream, principalId);
        return last.accessToken;
      },
      onUnauthorized: async () => {
        last = await this.refreshAfterUnauthorized(tenantId, upstream, principalId, last);
      },
    };
  }

  /**
   * The link the calling principal opens to (re)connect its own per-user credential: single-use,
   * bound to that subject. Null for a shared credential (only a tenant admin may connect one, through
   * the authenticated `POST …/connect`) and for client-credentials upstreams.
   */
  connectUrl(tenantId: string, upstream: OAuthUpstreamRef, subject: string): string | null {
    if (this.grant(upstream) === "client_credentials" || subject === "") return null;
    return connectLink(
      this.options.sealer,
      this.options.apiBaseUrl,
      { tenantId, upstreamId: upstream.id, subject },
      this.ticketTtlMs,
    );
  }

  /** Asks the workers for a token newer than `row`'s and waits for it (one request per stale token). */
  private refresh(
    tenantId: string,
    upstream: OAuthUpstreamRef,
    subject: string,
    row: StoredCredential | null,
    staleGeneration = row?.generation,
  ): Promise<UpstreamAccessToken> {
    if (row?.status === "needs_reconnect") {
      return Promise.reject(this.authRequired(tenantId, upstream, subject, row.lastRefreshError));
    }
    // Without a refresh token only the client credentials grant can get a token without a person.
    if (this.grant(upstream) !== "client_credentials" && !row?.refreshTokenSealed) {
      const reason = row ? "the access token expired and there is no refresh token" : null;
      return Promise.reject(this.authRequired(tenantId, upstream, subject, reason));
    }
    const stale = staleGeneration ?? null;
    const flight = `${this.key(upstream.id, subject)}\u0000${stale}`;
    let pending = this.refreshing.get(flight);
    if (!pending) {
      pending = this.awaitRefresh(tenantId, upstream, subject, stale).finally(() =>
        this.refreshing.delete(flight),
      );
      this.refreshing.set(flight, pending);
    }
    return pending;
  }

  private async awaitRefresh(
    tenantId: string,
    upstream: OAuthUpstreamRef,
    subject: string,
    staleGeneration: number | null,
  ): Promise<UpstreamAccessToken> {
    const key = this.key(upstream.id, subject);
    const deadline = Date.now() + this.refreshTimeoutMs;
    let wake = this.nextEvent(key);
    const event: CredentialEvent = {
      type: "refresh_requested",
      tenantId,
      upstreamId: upstream.id,
      subject,
      staleGeneration,
    };
    await this.options.bus.publish(BusChannel.credentials, event);
    for (;;) {
      // Woken by a credential event, or every second anyway: the bus is at-most-once.
      await Promise.race([wake.promise, sleep(Math.max(0, Math.min(1_000, deadline - Date.now())))]);
      wake.cancel();
      wake = this.nextEvent(key);
      const row = await this.read(upstream.id, subject);
      const usable = this.usable(row);
      if (usable && (staleGeneration === null || usable.generation > staleGeneration)) {
        wake.cancel();
        this.cache.set(key, usable);
        return usable;
      }
      if (row?.status === "needs_reconnect" || Date.now() >= deadline) {
        wake.cancel();
        if (row?.status === "needs_reconnect")
          throw this.authRequired(tenantId, upstream, subject, row.lastRefreshError);
        throw new AppError(
          ErrorCode.UPSTREAM_UNAVAILABLE,
          `No fresh access token for upstream ${upstream.name} within ${Math.round(this.refreshTimeoutMs / 1000)} s${row?.lastRefreshError ? ` (last error: ${row.lastRefreshError})` : ""}. Check that a Gatehouse worker is running, then retry.`,
          { upstream: upstream.name },
        );
      }
    }
  }

  private nextEvent(key: string): { promise: Promise<void>; cancel(): void } {
    let set = this.wakeups.get(key);
    if (!set) {
      set = new Set();
      this.wakeups.set(key, set);
    }
    const wakeups = set;
    let fire: () => void = () => {};
    const promise = new Promise<void>((resolve) => {
      fire = resolve;
    });
    wakeups.add(fire);
    return {
      promise,
      cancel: () => {
        wakeups.delete(fire);
        if (wakeups.size === 0 && this.wakeups.get(key) === wakeups) this.wakeups.delete(key);
      },
    };
  }

  private onEvent(message: unknown): void {
    const parsed = CredentialEventSchema.safeParse(message);
    if (!parsed.success || parsed.data.type === "refresh_requested") return;
    const key = this.key(parsed.data.upstreamId, parsed.data.subject);
    this.cache.delete(key);
    for (const fire of this.wakeups.get(key) ?? []) fire();
  }

  private read(upstreamId: string, subject: string): Promise<StoredCredential | null> {
    const key = this.key(upstreamId, subject);
    let p = this.loading.get(key);
    if (!p) {
      p = this.options.load(upstreamId, subject).finally(() => this.loading.delete(key));
      this.loading.set(key, p);
    }
    return p;
  }

  private usable(row: StoredCredential | null): UpstreamAccessToken | null {
    if (!row?.accessTokenSealed || row.status === "needs_reconnect") return null;
    const token: UpstreamAccessToken = {
      accessToken: this.options.sealer.unseal(row.accessTokenSealed),
      credentialId: row.id,
      generation: row.generation,
      expiresAt: row.expiresAt ? row.expiresAt.getTime() : null,
    };
    return this.fresh(token) ? token : null;
  }

  private fresh(token: UpstreamAccessToken): boolean {
    return token.expiresAt === null || token.expiresAt - this.expirySkewMs > Date.now();
  }

  private grant(upstream: OAuthUpstreamRef): "client_credentials" | "authorization_code" {
    return oauthGrantOf(upstream.authMode, readOAuthAuthConfig(upstream.authConfig));
  }

  private authRequired(
    tenantId: string,
    upstream: OAuthUpstreamRef,
    subject: string,
    reason: string | null,
  ): AppError {
    const connectUrl = this.connectUrl(tenantId, upstream, subject);
    const why = reason ? ` (${reason})` : "";
    const message = connectUrl
      ? `Upstream ${upstream.name} needs your account to be connected${why}. Open ${connectUrl} to connect it, then retry.`
      : this.grant(upstream) === "client_credentials"
        ? `Upstream ${upstream.name} refused the platform's OAuth client credentials${why}. An admin must fix the upstream's OAuth client.`
        : `Upstream ${upstream.name} needs its shared account to be connected${why}. A tenant admin must connect it (POST /v1/tenants/{tenant}/upstreams/${upstream.name}/connect), then retry.`;
    return new AppError(ErrorCode.UPSTREAM_AUTH_REQUIRED, message, {
      upstream: upstream.name,
      ...(connectUrl ? { connectUrl } : {}),
    });
  }

  private key(upstreamId: string, subject: string): string {
    return `${upstreamId}\u0000${subject}`;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
