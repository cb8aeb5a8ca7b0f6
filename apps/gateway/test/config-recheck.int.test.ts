// A revocation the bus never delivered (architecture.md, "Config propagation": the bus, plus a
// version re-check on reconnect and every GATEWAY_CONFIG_RECHECK_MS). The nodes' bus runs on a
// Redis of this test's own, which it stops and starts again: the key is deleted and the version
// bumped while the subscriber is down, so no event reaches the nodes.
import { randomBytes } from "node:crypto";
import { RedisBus } from "@gatehouse/shared/node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisServer } from "../../../test/support/redis-server.js";
import { loadGatewayConfig } from "../src/config/gateway.config.js";
import { createGateway, type Gateway } from "../src/gateway.js";
import { createHarness, type Harness, SECRETS_KEY, seedKey } from "./harness.js";

let h: Harness;
let redis: RedisServer;
let tenant: { id: string; slug: string };
const nodes: Array<{ gateway: Gateway; bus: RedisBus; url: string }> = [];

/** A node whose config comes from the environment variables the README documents. */
async function startNode(env: Record<string, string>) {
  const bus = new RedisBus({ url: redis.url, keyPrefix: h.prefix, logger: { warn() {}, info() {} } });
  const gateway = await createGateway({
    config: loadGatewayConfig({
      PUBLIC_GATEWAY_URL: "http://localhost:8080",
      SECRETS_KEY,
      GATEWAY_METRICS_PORT: "0",
      ...env,
    }),
    db: h.db,
    bus,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
  });
  const { port } = await gateway.listen(0, "127.0.0.1");
  const node = { gateway, bus, url: `http://127.0.0.1:${port}` };
  nodes.push(node);
  return node;
}

async function initialize(url: string, key: string): Promise<number> {
  const res = await fetch(`${url}/t/${tenant.slug}/mcp`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${key}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
    }),
  });
  await res.body?.cancel();
  return res.status;
}

async function until(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The key is deleted and the version bumped with no event: what a write during the outage leaves. */
async function revokeSilently(keyId: string): Promise<number> {
  await h.db.prisma.apiKey.delete({ where: { id: keyId } });
  const t = await h.db.prisma.tenant.update({
    where: { id: tenant.id },
    data: { configVersion: { increment: 1 } },
  });
  return t.configVersion;
}

beforeAll(async () => {
  h = await createHarness();
  redis = await RedisServer.start();
  const t = await h.db.prisma.tenant.create({
    data: { slug: `recheck-${randomBytes(3).toString("hex")}`, name: "Recheck" },
  });
  tenant = { id: t.id, slug: t.slug };
}, 60_000);

afterAll(async () => {
  for (const n of nodes) {
    await n.gateway.close();
    await n.bus.close();
  }
  await redis?.close();
  await h?.close();
});

describe("a revocation missed while the bus subscriber is down", () => {
  it("is in force after the re-check interval (GATEWAY_CONFIG_RECHECK_MS), the bus still down; never without it", async () => {
    const rechecking = await startNode({ GATEWAY_CONFIG_RECHECK_MS: "300" });
    const busOnly = await startNode({ GATEWAY_CONFIG_RECHECK_MS: "0" });
    const k = await seedKey(h.db, tenant.id);
    for (const n of [rechecking, busOnly]) expect(await initialize(n.url, k.key)).toBe(200);

    await redis.stop("SIGKILL");
    await until(
      "both subscribers to notice the outage",
      () => !rechecking.bus.connected && !busOnly.bus.connected,
    );
    const version = await revokeSilently(k.id);

    await until(
      "the re-checking node to refuse the revoked key",
      async () => (await initialize(rechecking.url, k.key)) === 401,
    );
    expect(rechecking.gateway.tenants.peek(tenant.id)?.version).toBe(version);
    // Nothing came over the bus: it is still down, and the node without a re-check still takes the key.
    expect(rechecking.bus.connected).toBe(false);
    expect(await initialize(busOnly.url, k.key)).toBe(200);
    expect(busOnly.gateway.tenants.peek(tenant.id)?.version).toBeLessThan(version);

    // The bus comes back: the node without a periodic re-check catches up on reconnect.
    await redis.restart();
    await until(
      "the bus-only node to refuse the revoked key after reconnect",
      async () => (await initialize(busOnly.url, k.key)) === 401,
    );
    expect(busOnly.bus.connected).toBe(true);
    expect(busOnly.gateway.tenants.peek(tenant.id)?.version).toBe(version);
  }, 90_000);
});
