import { createHmac, randomBytes } from "node:crypto";
import type { PrismaClient, User } from "@gatehouse/db";
import { SESSION_COOKIE } from "@gatehouse/shared";
import { hashToken, safeEqual } from "@gatehouse/shared/node";
import { Inject, Injectable } from "@nestjs/common";
import type { Logger } from "pino";
import { API_CONFIG, LOGGER, PRISMA } from "../common/tokens.js";
import type { ApiConfig } from "../config/api.config.js";
import { type ConsoleSettings, consoleSettings } from "./console.config.js";

// lastSeenAt drives the idle expiry; writing it at most once a minute keeps reads cheap.
const TOUCH_RESOLUTION_MS = 60_000;
const SESSION_PREFIX = "mgs_";

export interface ActiveSession {
  id: string;
  user: User;
  expiresAt: Date;
  idleExpiresAt: Date;
}

/**
 * Owns console sessions: the cookie carries a random token, the database its hash. A session ends
 * when its row is deleted (sign out, sign out everywhere, the member removed), when it has not
 * been used for the idle timeout, or at its absolute expiry.
 */
@Injectable()
export class SessionsService {
  readonly settings: ConsoleSettings;
  private readonly csrfKey: Buffer;

  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(API_CONFIG) config: ApiConfig,
    @Inject(LOGGER) private readonly log: Logger,
  ) {
    this.settings = consoleSettings(config);
    // A key of its own for CSRF tokens, derived so that neither secret can stand in for the other.
    this.csrfKey = createHmac("sha256", config.SECRETS_KEY).update("gatehouse:console-csrf:v1").digest();
  }

  async create(
    userId: string,
    userAgent: string | undefined,
  ): Promise<{ token: string; session: ActiveSession }> {
    const token = SESSION_PREFIX + randomBytes(32).toString("base64url");
    const now = new Date();
    const expiresAt = new Date(now.getTime() + this.settings.maxMs);
    // Sweep this user's dead sessions while we are here; nothing else piles them up.
    await this.prisma.consoleSession.deleteMany({ where: { userId, expiresAt: { lt: now } } });
    const row = await this.prisma.consoleSession.create({
      data: {
        userId,
        hash: hashToken(token),
        expiresAt,
        lastSeenAt: now,
        userAgent: userAgent?.slice(0, 300),
      },
      include: { user: true },
    });
    return { token, session: this.active(row) };
  }

  /** The live session of a cookie token, or null (unknown, ended, idle too long, expired). */
  async authenticate(token: string): Promise<ActiveSession | null> {
    if (!token.startsWith(SESSION_PREFIX)) return null;
    const row = await this.prisma.consoleSession.findUnique({
      where: { hash: hashToken(token) },
      include: { user: true },
    });
    if (!row) return null;
    const now = Date.now();
    if (row.expiresAt.getTime() <= now || row.lastSeenAt.getTime() + this.settings.idleMs <= now) {
      await this.prisma.consoleSession.deleteMany({ where: { id: row.id } });
      return null;
    }
    if (now - row.lastSeenAt.getTime() >= TOUCH_RESOLUTION_MS) {
      row.lastSeenAt = new Date(now);
      this.prisma.consoleSession
        .updateMany({ where: { id: row.id }, data: { lastSeenAt: row.lastSeenAt } })
        .catch((err: unknown) => this.log.warn({ err }, "could not record console session use"));
    }
    return this.active(row);
  }

  /** The CSRF token of a session: an HMAC of its id, so it needs no storage and cannot be guessed. */
  csrfToken(sessionId: string): string {
    return createHmac("sha256", this.csrfKey).update(sessionId).digest("base64url");
  }

  checkCsrf(sessionId: string, presented: string | undefined): boolean {
    return typeof presented === "string" && safeEqual(presented, this.csrfToken(sessionId));
  }

  async end(sessionId: string): Promise<void> {
    await this.prisma.consoleSession.deleteMany({ where: { id: sessionId } });
  }

  /** Ends every session of a user at once. */
  async endAll(userId: string): Promise<number> {
    const { count } = await this.prisma.consoleSession.deleteMany({ where: { userId } });
    return count;
  }

  /** `Set-Cookie` for a new session: HttpOnly, SameSite=Lax, Secure when the console is served over https. */
  cookie(token: string): string {
    return this.cookieString(SESSION_COOKIE, token, Math.floor(this.settings.maxMs / 1000));
  }

  clearCookie(): string {
    return this.cookieString(SESSION_COOKIE, "", 0);
  }

  cookieString(name: string, value: string, maxAgeSeconds: number): string {
    const secure = this.settings.publicUrl.startsWith("https:") ? "; Secure" : "";
    return `${name}=${value}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${secure}`;
  }

  private active(row: { id: string; user: User; expiresAt: Date; lastSeenAt: Date }): ActiveSession {
    const idle = new Date(row.lastSeenAt.getTime() + this.settings.idleMs);
    return {
      id: row.id,
      user: row.user,
      expiresAt: row.expiresAt,
      idleExpiresAt: idle < row.expiresAt ? idle : row.expiresAt,
    };
  }
}

/** The value of one cookie in a `Cookie` header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) {
      const raw = part.slice(i + 1).trim();
      try {
        return decodeURIComponent(raw);
      } catch {
        return raw;
      }
    }
  }
  return undefined;
}
