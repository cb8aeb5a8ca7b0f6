import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { BusChannel, type CredentialEvent, InProcessBus } from "../bus.js";
import { AppError } from "../errors.js";
import { createSealer } from "./sealing.js";
import { openConnectTicket, type StoredCredential, UpstreamTokens } from "./upstream-tokens.js";

const sealer = createSealer(randomBytes(32));
const TENANT = "tenant-1";

/** A stand-in for the credential table and the workers: real bus, real sealing. */
function world() {
  const bus = new InProcessBus();
  const rows = new Map<string, StoredCredential>();
  const requests: CredentialEvent[] = [];
  let loads = 0;
  const put = (upstreamId: string, subject: string, token: string, generation: number, ttlMs = 60_000) => {
    const row: StoredCredential = {
      id: `cred-${upstreamId}-${subject}`,
      accessTokenSealed: sealer.seal(token),
      refreshTokenSealed: sealer.seal(`refresh-${token}`),
      expiresAt: new Date(Date.now() + ttlMs),
      status: "active",
      generation,
      lastRefreshError: null,
    };
    rows.set(`${upstreamId}|${subject}`, row);
    return row;
  };
  const announce = (upstreamId: string, subject: string) => {
    const row = rows.get(`${upstreamId}|${subject}`)!;
    return bus.publish(BusChannel.credentials, {
      type: "updated",
      tenantId: TENANT,
      upstreamId,
      subject,
      credentialId: row.id,
      generation: row.generation,
      expiresAt: row.expiresAt?.toISOString() ?? null,
    } satisfies CredentialEvent);
  };
  const tokens = new UpstreamTokens({
    bus,
    sealer,
    apiBaseUrl: "http://api.test/",
    refreshTimeoutMs: 1_500,
    load: async (upstreamId, subject) => {
      loads += 1;
      return rows.get(`${upstreamId}|${subject}`) ?? null;
    },
  });
  return {
    bus,
    rows,
    requests,
    put,
    announce,
    tokens,
    loads: () => loads,
    /** A fake worker: answers refresh requests by minting the next generation. */
    async worker(behaviour: "refresh" | "reconnect" | "silent" = "refresh") {
      await bus.subscribe(BusChannel.credentials, (m) => {
        const e = m as CredentialEvent;
        if (e.type !== "refresh_requested") return;
        requests.push(e);
        if (behaviour === "silent") return;
        const current = rows.get(`${e.upstreamId}|${e.subject}`);
        if (behaviour === "reconnect") {
          if (current) {
            current.status = "needs_reconnect";
            current.lastRefreshError = "invalid_grant: grant revoked";
          }
          void bus.publish(BusChannel.credentials, {
            type: "needs_reconnect",
            tenantId: TENANT,
            upstreamId: e.upstreamId,
            subject: e.subject,
            credentialId: current?.id ?? "x",
            reason: "invalid_grant",
          });
          return;
        }
        const generation = (current?.generation ?? 0) + 1;
        setTimeout(() => {
          put(e.upstreamId, e.subject, `token-${e.subject || "shared"}-${generation}`, generation);
          void announce(e.upstreamId, e.subject);
        }, 50);
      });
    },
  };
}

const cc = { id: "up-cc", name: "cc", authMode: "oauth-client-credentials", authConfig: {} };
const perUser = {
  id: "up-pu",
  name: "pu",
  authMode: "oauth-authorization-code",
  authConfig: { perUser: true },
};

describe("UpstreamTokens", () => {
  const open: UpstreamTokens[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.stop()));
  });
  async function started(w: ReturnType<typeof world>) {
    await w.tokens.start();
    open.push(w.tokens);
    return w.tokens;
  }

  it("caches the current token and drops it when the bus says it changed", async () => {
    const w = world();
    const tokens = await started(w);
    w.put(cc.id, "", "t1", 1);
    expect((await tokens.token(TENANT, cc, "key:a")).accessToken).toBe("t1");
    expect((await tokens.token(TENANT, cc, "key:b")).accessToken).toBe("t1");
    expect(w.loads()).toBe(1);
    w.put(cc.id, "", "t2", 2);
    await w.announce(cc.id, "");
    await new Promise((r) => setTimeout(r, 5));
    const t = await tokens.token(TENANT, cc, "key:a");
    expect([t.accessToken, t.generation]).toEqual(["t2", 2]);
  });

  it("gets a first client-credentials token from the workers", async () => {
    const w = world();
    const tokens = await started(w);
    await w.worker();
    const t = await tokens.token(TENANT, cc, "key:a");
    expect(t.accessToken).toBe("token-shared-1");
    expect(w.requests).toEqual([
      { type: "refresh_requested", tenantId: TENANT, upstreamId: cc.id, subject: "", staleGeneration: null },
    ]);
  });

  it("asks for one refresh after a 401, shared by concurrent callers, and skips it when another node already refreshed", async () => {
    const w = world();
    const tokens = await started(w);
    await w.worker();
    w.put(cc.id, "", "old", 3);
    const stale = await tokens.token(TENANT, cc, "key:a");
    const fresh = await Promise.all(
      Array.from({ length: 5 }, () => tokens.refreshAfterUnauthorized(TENANT, cc, "key:a", stale)),
    );
    expect(new Set(fresh.map((t) => t.accessToken))).toEqual(new Set(["token-shared-4"]));
    expect(w.requests).toHaveLength(1);
    expect(w.requests[0]).toMatchObject({ staleGeneration: 3 });
    // Another node saw generation 4 fail while this one already holds 5: no new request.
    w.put(cc.id, "", "newer", 5);
    const again = await tokens.refreshAfterUnauthorized(TENANT, cc, "key:a", { generation: 4 });
    expect(again.accessToken).toBe("newer");
    expect(w.requests).toHaveLength(1);
  });

  it("keeps per-user tokens apart and sends a user without an account to connect", async () => {
    const w = world();
    const tokens = await started(w);
    w.put(perUser.id, "sub:alice", "alice-token", 1);
    w.put(perUser.id, "sub:bob", "bob-token", 1);
    expect((await tokens.token(TENANT, perUser, "sub:alice")).accessToken).toBe("alice-token");
    expect((await tokens.token(TENANT, perUser, "sub:bob")).accessToken).toBe("bob-token");
    const error = await tokens.token(TENANT, perUser, "sub:carol").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    const appError = error as AppError;
    expect(appError.code).toBe("UPSTREAM_AUTH_REQUIRED");
    const connectUrl = (appError.details as { connectUrl: string }).connectUrl;
    expect(connectUrl).toMatch(/^http:\/\/api\.test\/v1\/oauth\/connect\?ticket=/);
    expect(appError.message).toContain(connectUrl);
    const ticket = openConnectTicket(sealer, decodeURIComponent(connectUrl.split("ticket=")[1]!));
    expect(ticket).toMatchObject({ tenantId: TENANT, upstreamId: perUser.id, subject: "sub:carol" });
    expect(openConnectTicket(sealer, "v1.forged.x.y")).toBeNull();
    expect(
      openConnectTicket(createSealer(randomBytes(32)), decodeURIComponent(connectUrl.split("ticket=")[1]!)),
    ).toBeNull();
  });

  it("turns a permanent refresh failure into UPSTREAM_AUTH_REQUIRED with the reason", async () => {
    const w = world();
    const tokens = await started(w);
    await w.worker("reconnect");
    w.put(perUser.id, "sub:alice", "expired", 1, -10_000);
    const error = (await tokens.token(TENANT, perUser, "sub:alice").catch((e: unknown) => e)) as AppError;
    expect(error.code).toBe("UPSTREAM_AUTH_REQUIRED");
    expect(error.message).toMatch(/invalid_grant: grant revoked/);
    expect(error.message).toMatch(/Open http:\/\/api\.test\/v1\/oauth\/connect\?ticket=/);
  });

  it("gives up with UPSTREAM_UNAVAILABLE when no worker answers", async () => {
    const w = world();
    const tokens = await started(w);
    await w.worker("silent");
    const started_ = Date.now();
    const error = (await tokens.token(TENANT, cc, "key:a").catch((e: unknown) => e)) as AppError;
    expect(error.code).toBe("UPSTREAM_UNAVAILABLE");
    expect(error.message).toMatch(/worker is running/);
    expect(Date.now() - started_).toBeGreaterThanOrEqual(1_400);
  });

  it("gives the v2 SDK transport an auth provider that refreshes once on 401", async () => {
    const w = world();
    const tokens = await started(w);
    await w.worker();
    w.put(cc.id, "", "first", 1);
    const provider = tokens.authProvider(TENANT, cc, "key:a");
    expect(await provider.token()).toBe("first");
    await provider.onUnauthorized();
    expect(await provider.token()).toBe("token-shared-2");
    expect(w.requests).toHaveLength(1);
  });
});
