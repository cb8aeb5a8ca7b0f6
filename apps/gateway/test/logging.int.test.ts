// "Logs never contain tokens or secrets" (README, LOG_LEVEL), for the gateway: a node as
// production runs it, logging at trace (everything it can say) into memory, driven through the
// paths that handle secrets: API keys in Authorization and X-API-Key, a wrong key, an upstream's
// sealed static header and sealed bearer token, a denied call, a down upstream, a timeout.
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Fixture, startFixture } from "./fixtures.js";
import { createHarness, type Harness, SECRETS_KEY, sealer, seedKey } from "./harness.js";

let h: Harness;
let alpha: Fixture;
let beta: Fixture;
const lines: string[] = [];
const headerSecret = `hdr-secret-${randomBytes(8).toString("hex")}`;
const bearerSecret = `bearer-secret-${randomBytes(8).toString("hex")}`;

beforeAll(async () => {
  h = await createHarness();
  [alpha, beta] = await Promise.all([startFixture("alpha"), startFixture("beta")]);
}, 60_000);

afterAll(async () => {
  await h?.close();
  await alpha?.close();
  await beta?.close();
});

describe("gateway logs", () => {
  it("never contain API keys, upstream secrets or the secrets key, even at trace", async () => {
    const t = await h.db.prisma.tenant.create({
      data: { slug: `logs-${randomBytes(3).toString("hex")}`, name: "Logs" },
    });
    await h.db.prisma.upstream.create({
      data: {
        tenantId: t.id,
        name: "alpha",
        url: alpha.url,
        transport: "streamable_http",
        toolPrefix: "alpha_",
        headersSealed: sealer.sealJson({ "x-upstream-token": headerSecret }),
      },
    });
    await h.db.prisma.upstream.create({
      data: {
        tenantId: t.id,
        name: "beta",
        url: beta.url,
        transport: "streamable_http",
        toolPrefix: "beta_",
        timeoutMs: 2000,
        authMode: "bearer",
        authSecretSealed: sealer.seal(bearerSecret),
      },
    });
    await h.db.prisma.upstream.create({
      data: {
        tenantId: t.id,
        name: "down",
        url: "http://127.0.0.1:1/mcp",
        transport: "streamable_http",
        toolPrefix: "down_",
      },
    });
    await h.db.prisma.policy.create({
      data: {
        tenantId: t.id,
        version: 1,
        document: {
          defaultEffect: "allow",
          rules: [{ id: "no-secret", effect: "deny", tools: ["get_secret"] }],
        },
      },
    });
    const key = (await seedKey(h.db, t.id, { roles: ["admin"] })).key;
    const wrongKey = `mgw_${randomBytes(32).toString("base64url")}`;
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const node = await h.startOpsNode({}, { logger: pino({ level: "trace" }, sink) });
    const url = `${node.url}/t/${t.slug}/mcp`;

    const asHeaders = (k: string): Array<Record<string, string>> => [
      { authorization: `Bearer ${k}` },
      { "x-api-key": k },
    ];
    for (const headers of asHeaders(key)) {
      const client = new Client({ name: "logs-agent", version: "1" });
      await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
      await client.listTools();
      await client.callTool({ name: "alpha_echo", arguments: { text: "a" } });
      await client.callTool({ name: "beta_echo", arguments: { text: "b" } });
      await client.callTool({ name: "alpha_get_secret", arguments: {} }).catch(() => {});
      await client.callTool({ name: "down_anything", arguments: {} }).catch(() => {});
      await client.callTool({ name: "beta_slow", arguments: { steps: 200 } }).catch(() => {});
      await client.close();
    }
    for (const headers of asHeaders(wrongKey)) {
      const res = await fetch(url, {
        method: "POST",
        headers: {
          ...headers,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
      });
      expect(res.status).toBe(401);
    }
    // The upstreams got their secrets, so the node did handle them.
    expect(alpha.requestHeaders.some((hd) => hd["x-upstream-token"] === headerSecret)).toBe(true);
    expect(beta.authHeaders).toContain(`Bearer ${bearerSecret}`);
    await node.close();

    const log = lines.join("");
    // The lines written where secrets are at hand are there (so a leak would show): the refused
    // keys, the upstreams that failed, the snapshot with the sealed values; none of it is secret.
    expect(lines.filter((l) => l.includes('"msg":"unauthenticated"'))).toHaveLength(2);
    expect(log).toContain('"upstream":"down"');
    expect(log).toContain("tenant snapshot applied");
    for (const [what, secret] of [
      ["the API key", key],
      ["the API key's secret part", key.slice(12)],
      ["a wrong key", wrongKey],
      ["the upstream's static header", headerSecret],
      ["the upstream's bearer token", bearerSecret],
      ["SECRETS_KEY", SECRETS_KEY],
    ] as const) {
      expect(log.includes(secret), `${what} is in the log`).toBe(false);
    }
  }, 60_000);
});
