import {
  AppError,
  type Bus,
  BusChannel,
  CredentialEventSchema,
  credentialSubjectFor,
  ErrorCode,
  isOAuthAuthMode,
  oauthGrantOf,
  readOAuthAuthConfig,
  type UpstreamSnapshot,
} from "@gatehouse/shared";
import type { UpstreamTokens } from "@gatehouse/shared/node";

/**
 * Whom an upstream connection or catalog serves: the tenant (refresh requests and reconnect links
 * name it) and the calling principal (per-user upstreams use that principal's own credential).
 * `View` and a session's `{ tenant: { id }, principal }` both fit.
 */
export interface CallerScope {
  tenant: { id: string };
  principal: { id: string; kind?: string };
}

/** What the v2 SDK's HTTP transports take as `authProvider`. */
export interface TransportAuth {
  token(): Promise<string | undefined>;
  onUnauthorized(): Promise<void>;
}

const AUTH_FAILURE = Symbol.for("gatehouse.upstreamAuthFailure");
/**
 * How long "this caller has no usable credential" is remembered without a bus event saying
 * otherwise: unconnected callers do not cost a database read per request.
 */
const REFUSED_TTL_MS = 10_000;

/**
 * The gateway side of upstream OAuth (issue 5): which credential a caller's connection to an
 * upstream uses, and the `authProvider` that hands the transport its current token. Tokens come
 * from `UpstreamTokens` (memory, refreshed by the workers and announced on the bus); the agent's
 * own token is never involved.
 */
export class UpstreamCredentials {
  /** `${upstreamId}\0${subject}` → the UPSTREAM_AUTH_REQUIRED answer, until a credential event or the TTL. */
  private readonly refused = new Map<string, { until: number; error: unknown }>();
  private unsubscribe: (() => Promise<void>) | null = null;

  constructor(
    private readonly tokens: UpstreamTokens | null,
    private readonly bus: Bus | null = null,
  ) {}

  /** Starts the token cache and listens for credential events. */
  async start(): Promise<void> {
    await this.tokens?.start();
    if (!this.bus || this.unsubscribe) return;
    this.unsubscribe = await this.bus.subscribe(BusChannel.credentials, (message) => {
      const parsed = CredentialEventSchema.safeParse(message);
      if (parsed.success && parsed.data.type !== "refresh_requested") {
        this.refused.delete(refusedKey(parsed.data.upstreamId, parsed.data.subject));
      }
    });
    this.bus.onReconnect(() => this.refused.clear());
  }

  async stop(): Promise<void> {
    await this.unsubscribe?.();
    this.unsubscribe = null;
    await this.tokens?.stop();
  }

  /** True for the auth modes that use stored OAuth credentials. */
  static applies(u: Pick<UpstreamSnapshot, "authMode">): boolean {
    return isOAuthAuthMode(u.authMode);
  }

  /** True when every principal must use its own credential (no sharing of connections or catalogs). */
  static perUser(u: Pick<UpstreamSnapshot, "authMode" | "authConfig">): boolean {
    if (!isOAuthAuthMode(u.authMode)) return false;
    const config = readOAuthAuthConfig(u.authConfig);
    return oauthGrantOf(u.authMode, config) === "authorization_code" && config.perUser === true;
  }

  /**
   * What separates connections and catalogs that must not be shared between callers: `""` for
   * upstreams whose connections any caller may use, else the per-user credential subject.
   */
  partition(u: UpstreamSnapshot, caller: CallerScope | undefined): string {
    if (!UpstreamCredentials.perUser(u)) return "";
    const c = this.requireCaller(u, caller);
    return `\u0000${credentialSubjectFor(u, c.principal.id)}`;
  }

  /**
   * The transport's `authProvider` for `caller` on `u`, or undefined for upstreams without OAuth.
   * Errors it throws (`UPSTREAM_AUTH_REQUIRED` with `details.connectUrl`, `UPSTREAM_UNAVAILABLE`
   * when no fresh token came in time) are marked, so that `authFailureOf` finds them however the
   * SDK wrapped them.
   */
  authProvider(u: UpstreamSnapshot, caller: CallerScope | undefined): TransportAuth | undefined {
    if (!UpstreamCredentials.applies(u)) return undefined;
    const c = this.requireCaller(u, caller);
    if (!this.tokens) {
      throw new AppError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        `Upstream ${u.name} uses OAuth, but this gateway node has no SECRETS_KEY to read its credentials; an operator must set it.`,
        { upstream: u.name },
      );
    }
    if (UpstreamCredentials.perUser(u) && c.principal.kind === "anonymous") {
      throw new AppError(
        ErrorCode.UPSTREAM_AUTH_REQUIRED,
        `Upstream ${u.name} uses each caller's own account; anonymous callers have none. Authenticate with an API key or token, then connect your account.`,
        { upstream: u.name },
      );
    }
    const inner = this.tokens.authProvider(c.tenant.id, u, c.principal.id);
    const key = refusedKey(u.id, credentialSubjectFor(u, c.principal.id));
    return {
      token: async () => {
        const refused = this.refused.get(key);
        if (refused && refused.until > Date.now()) throw refused.error;
        try {
          return await inner.token();
        } catch (err) {
          if (err instanceof AppError && err.code === ErrorCode.UPSTREAM_AUTH_REQUIRED)
            this.remember(key, err);
          throw markAuthFailure(err);
        }
      },
      onUnauthorized: async () => {
        try {
          await inner.onUnauthorized();
        } catch (err) {
          throw markAuthFailure(err);
        }
      },
    };
  }

  private remember(key: string, error: unknown): void {
    const now = Date.now();
    if (this.refused.size >= 10_000) {
      for (const [k, v] of this.refused) if (v.until <= now) this.refused.delete(k);
      if (this.refused.size >= 10_000) this.refused.clear();
    }
    this.refused.set(key, { until: now + REFUSED_TTL_MS, error });
  }

  private requireCaller(u: UpstreamSnapshot, caller: CallerScope | undefined): CallerScope {
    // Fail closed: a connection to an OAuth upstream is always opened for someone.
    if (!caller) {
      throw new AppError(
        ErrorCode.INTERNAL,
        `No caller given for a connection to OAuth upstream ${u.name}; refusing to pick a credential.`,
        { upstream: u.name },
      );
    }
    return caller;
  }
}

function refusedKey(upstreamId: string, subject: string): string {
  return `${upstreamId}\u0000${subject}`;
}

function markAuthFailure(err: unknown): unknown {
  if (err && typeof err === "object") {
    try {
      Object.defineProperty(err, AUTH_FAILURE, { value: true, configurable: true });
    } catch {
      // frozen: it is still an AppError, found by authFailureOf
    }
  }
  return err;
}

/**
 * The credential error behind `err` (thrown by an `authProvider`, possibly wrapped by the SDK in
 * `cause`s), or null when the failure was not about credentials.
 */
export function authFailureOf(err: unknown): AppError | null {
  let e: unknown = err;
  for (let depth = 0; depth < 6 && e && typeof e === "object"; depth++) {
    if (
      e instanceof AppError &&
      ((e as unknown as Record<symbol, unknown>)[AUTH_FAILURE] === true ||
        e.code === ErrorCode.UPSTREAM_AUTH_REQUIRED)
    )
      return e;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}
