import type { Prisma, PrismaClient, Upstream } from "@gatehouse/db";
import { isOAuthAuthMode } from "@gatehouse/shared";
import { networkCauseOf, type Sealer, staticUpstreamHeaders } from "@gatehouse/shared/node";
import {
  Client,
  SSEClientTransport,
  StreamableHTTPClientTransport,
  type Tool,
  type Transport,
} from "@modelcontextprotocol/client";
import { Inject, Injectable } from "@nestjs/common";
import type { Logger } from "pino";
import { ConfigVersionService } from "../common/config-version.service.js";
import { LOGGER, PRISMA, SEALER } from "../common/tokens.js";
import { CredentialsService } from "./credentials.service.js";
import type { OAuthSettings } from "./oauth.config.js";
import { OAUTH_SETTINGS } from "./oauth.tokens.js";

const CLIENT_INFO = { name: "gatehouse-worker", version: "0.1.0" };
/** Tool catalogs are capped: a misbehaving upstream cannot make us page forever. */
const MAX_PAGES = 50;

export type DiscoveryOutcome =
  | { outcome: "changed" | "unchanged"; tools: number }
  | { outcome: "skipped"; reason: string };

/**
 * Periodic tool discovery and health probes of HTTP upstreams, with the upstream's own
 * credentials (static headers, static auth, or the current OAuth token). Stdio upstreams are
 * left to the gateway nodes, which alone may run commands.
 */
@Injectable()
export class UpstreamProbeService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(SEALER) private readonly sealer: Sealer,
    @Inject(ConfigVersionService) private readonly configVersion: ConfigVersionService,
    @Inject(CredentialsService) private readonly credentials: CredentialsService,
    @Inject(OAUTH_SETTINGS) private readonly settings: OAuthSettings,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  /**
   * Lists the upstream's tools and stores the catalog. When it changed, the tenant's config
   * version is bumped so every gateway node reloads (and sends list_changed to its clients).
   */
  async discover(upstreamId: string, signal?: AbortSignal): Promise<DiscoveryOutcome> {
    const upstream = await this.prisma.upstream.findUnique({ where: { id: upstreamId } });
    const skip = this.skipReason(upstream);
    if (skip || !upstream) return { outcome: "skipped", reason: skip ?? "upstream deleted" };
    const tools = await this.withClient(upstream, signal, async (client) => {
      const all: Tool[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < MAX_PAGES; page++) {
        const result = await client.listTools(cursor ? { cursor } : undefined, {
          timeout: this.settings.httpTimeoutMs,
          ...(signal ? { signal } : {}),
        });
        all.push(...result.tools);
        cursor = result.nextCursor;
        if (!cursor) break;
      }
      return all.sort((a, b) => a.name.localeCompare(b.name));
    });
    const catalog = JSON.parse(JSON.stringify(tools)) as Prisma.InputJsonValue;
    const changed = stableJson(upstream.tools ?? null) !== stableJson(catalog);
    if (changed) {
      await this.configVersion.write(upstream.tenantId, (tx) =>
        tx.upstream.update({
          where: { id: upstream.id },
          data: { tools: catalog, toolsDiscoveredAt: new Date() },
        }),
      );
      this.log.info(
        { tenantId: upstream.tenantId, upstream: upstream.name, tools: tools.length },
        "tool catalog changed",
      );
    } else {
      await this.prisma.upstream.update({
        where: { id: upstream.id },
        data: { toolsDiscoveredAt: new Date() },
      });
    }
    return { outcome: changed ? "changed" : "unchanged", tools: tools.length };
  }

  /** Connects and pings; stores `ok`, `auth_required: …`, `unreachable: …` or `error: …` in `Upstream.health`. */
  async health(upstreamId: string, signal?: AbortSignal): Promise<{ health: string }> {
    const upstream = await this.prisma.upstream.findUnique({ where: { id: upstreamId } });
    const skip = this.skipReason(upstream);
    if (skip || !upstream) return { health: `skipped: ${skip ?? "upstream deleted"}` };
    let health: string;
    try {
      await this.withClient(upstream, signal, (client) =>
        client.ping({ timeout: this.settings.httpTimeoutMs, ...(signal ? { signal } : {}) }),
      );
      health = "ok";
    } catch (error) {
      health = describeProbeError(error);
    }
    await this.prisma.upstream.update({
      where: { id: upstream.id },
      data: { health: health.slice(0, 500), healthCheckedAt: new Date() },
    });
    return { health };
  }

  private skipReason(upstream: Upstream | null): string | null {
    if (!upstream) return "upstream deleted";
    if (!upstream.enabled) return "upstream disabled";
    if (upstream.transport === "stdio") return "stdio upstreams are probed by gateway nodes";
    if (!upstream.url) return "upstream has no URL";
    return null;
  }

  private async withClient<T>(
    upstream: Upstream,
    signal: AbortSignal | undefined,
    use: (client: Client) => Promise<T>,
  ): Promise<T> {
    const url = new URL(upstream.url!);
    const headers = await this.headers(upstream);
    const transport: Transport =
      upstream.transport === "sse"
        ? new SSEClientTransport(url, { requestInit: { headers } })
        : new StreamableHTTPClientTransport(url, { requestInit: { headers } });
    const client = new Client(CLIENT_INFO, {
      capabilities: {},
      versionNegotiation: { mode: "auto", probe: { timeoutMs: this.settings.httpTimeoutMs } },
    });
    try {
      await withTimeout(
        client.connect(transport),
        this.settings.httpTimeoutMs,
        signal,
        `connect to ${url.origin}`,
      );
      return await use(client);
    } catch (err) {
      // "fetch failed" says nothing; the socket's error at the bottom of the chain does.
      const cause = networkCauseOf(err, url.href);
      if (cause) throw new UpstreamUnreachableError(`Cannot reach ${url.origin}: ${cause}`, { cause: err });
      throw err;
    } finally {
      await client.close().catch(() => {});
    }
  }

  private async headers(upstream: Upstream): Promise<Record<string, string>> {
    const headers = staticUpstreamHeaders(upstream, this.sealer);
    if (isOAuthAuthMode(upstream.authMode)) {
      const token = await this.oauthToken(upstream);
      if (token) headers.Authorization = `Bearer ${token}`;
    }
    return headers;
  }

  /**
   * The shared credential's token; for per-user upstreams the most recently refreshed person's
   * (listing tools only, never calling them). An expired token triggers a refresh for next time.
   */
  private async oauthToken(upstream: Upstream): Promise<string | null> {
    const cred = await this.prisma.upstreamCredential.findFirst({
      where: {
        upstreamId: upstream.id,
        status: { not: "needs_reconnect" },
        accessTokenSealed: { not: null },
      },
      orderBy: [{ subject: "asc" }, { lastRefreshAt: "desc" }],
    });
    if (!cred?.accessTokenSealed) return null;
    if (cred.expiresAt && cred.expiresAt.getTime() <= Date.now()) {
      await this.credentials.enqueueNow(cred);
      return null;
    }
    return this.sealer.unseal(cred.accessTokenSealed);
  }
}

/** The upstream could not be reached at all; the message names the network cause. */
class UpstreamUnreachableError extends Error {
  override name = "UpstreamUnreachableError";
}

function describeProbeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof UpstreamUnreachableError) return `unreachable: ${message}`;
  if (/\b401\b|unauthori[sz]ed/i.test(message)) return `auth_required: ${message}`;
  if (/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|fetch failed|timed out|aborted/i.test(message)) {
    return `unreachable: ${message}`;
  }
  return `error: ${message}`;
}

async function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  signal: AbortSignal | undefined,
  what: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    signal?.addEventListener("abort", () => reject(new Error(`${what} aborted`)), { once: true });
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** JSON with object keys sorted, to compare catalogs regardless of key order. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );
}
