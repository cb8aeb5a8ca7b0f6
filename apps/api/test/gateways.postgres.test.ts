import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Harness, startDistributed } from "./harness.js";

// GET /v1/gateways reads the node registry through @gatehouse/db's listLiveNodes (the gateway writes it).
describe("GET /v1/gateways", () => {
  let h: Harness;
  const fresh = `node-fresh-${randomBytes(3).toString("hex")}`;
  const stale = `node-stale-${randomBytes(3).toString("hex")}`;

  beforeAll(async () => {
    h = await startDistributed();
    const now = Date.now();
    await h.prisma.gatewayNode.createMany({
      data: [
        {
          id: fresh,
          version: "1.2.3",
          startedAt: new Date(now - 60_000),
          lastHeartbeatAt: new Date(now - 1_000),
          configVersions: { "0199aaaa-0000-7000-8000-000000000001": 7 },
        },
        // Silent for a minute: crashed without removing its row.
        {
          id: stale,
          version: "1.2.2",
          startedAt: new Date(now - 3600_000),
          lastHeartbeatAt: new Date(now - 60_000),
        },
      ],
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  test("lists a node with a fresh heartbeat and hides a stale one", async () => {
    const res = await h.request("GET", "/v1/gateways");
    expect(res.status).toBe(200);
    expect(res.body.nextCursor).toBeNull();
    const ids = res.body.items.map((n: { id: string }) => n.id);
    expect(ids).toContain(fresh);
    expect(ids).not.toContain(stale);
    const node = res.body.items.find((n: { id: string }) => n.id === fresh);
    expect(node).toEqual({
      id: fresh,
      version: "1.2.3",
      startedAt: expect.stringMatching(/Z$/),
      lastHeartbeatAt: expect.stringMatching(/Z$/),
      configVersions: { "0199aaaa-0000-7000-8000-000000000001": 7 },
    });
    // A beat from the stale node brings it back.
    await h.prisma.gatewayNode.update({ where: { id: stale }, data: { lastHeartbeatAt: new Date() } });
    const again = await h.request("GET", "/v1/gateways");
    expect(again.body.items.map((n: { id: string }) => n.id)).toContain(stale);
  });

  test("platform admin only; no parameters; documented", async () => {
    const tenant = await h.request("POST", "/v1/tenants", {
      body: { slug: `gw-${randomBytes(3).toString("hex")}`, name: "GW" },
    });
    const token = await h.request("POST", `/v1/tenants/${tenant.body.slug}/tokens`, {
      body: { name: "o", role: "owner" },
    });
    const forbidden = await h.request("GET", "/v1/gateways", { token: token.body.token });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe("FORBIDDEN");
    expect((await h.request("GET", "/v1/gateways", { token: null })).status).toBe(401);
    const bad = await h.request("GET", "/v1/gateways?limit=5");
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe("limit");
    const doc = (await h.request("GET", "/docs-json", { token: null })).body;
    const item =
      doc.paths["/v1/gateways"].get.responses["200"].content["application/json"].schema.properties.items
        .items;
    expect(Object.keys(item.properties).sort()).toEqual([
      "configVersions",
      "id",
      "lastHeartbeatAt",
      "startedAt",
      "version",
    ]);
  });
});
