import { createDb, type Db, listLiveNodes, pruneDeadNodes } from "@gatehouse/db";
import { createTestDatabase, type TestDatabase } from "@gatehouse/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeRegistry } from "./node-registry.js";

let testDb: TestDatabase;
let db: Db;

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = await createDb({ databaseUrl: testDb.url });
});

afterAll(async () => {
  await db?.close();
  await testDb?.drop();
});

describe("NodeRegistry (real Postgres)", () => {
  it("registers on start, heartbeats with the applied config versions, and leaves on stop", async () => {
    const versions: Record<string, number> = { t1: 3 };
    const node = new NodeRegistry({
      prisma: db.prisma,
      id: "node-a",
      version: "0.1.0",
      intervalMs: 50,
      configVersions: () => versions,
    });
    await node.start();
    let [row] = await listLiveNodes(db.prisma);
    expect(row).toMatchObject({ id: "node-a", version: "0.1.0", configVersions: { t1: 3 } });
    expect(row!.startedAt.getTime()).toBe(node.startedAt.getTime());
    const firstBeat = row!.lastHeartbeatAt.getTime();

    versions.t2 = 7;
    await expect
      .poll(async () => (await listLiveNodes(db.prisma))[0]?.configVersions, { timeout: 3000 })
      .toEqual({ t1: 3, t2: 7 });
    [row] = await listLiveNodes(db.prisma);
    expect(row!.lastHeartbeatAt.getTime()).toBeGreaterThan(firstBeat);

    await node.stop();
    expect(await listLiveNodes(db.prisma)).toEqual([]);
    expect(await db.prisma.gatewayNode.count()).toBe(0);
  });

  it("lists two live nodes, and drops one that stopped heartbeating", async () => {
    const a = new NodeRegistry({ prisma: db.prisma, id: "node-1", version: "1", intervalMs: 40 });
    const b = new NodeRegistry({ prisma: db.prisma, id: "node-2", version: "1", intervalMs: 60_000 });
    await a.start();
    await b.start();
    expect((await listLiveNodes(db.prisma, 10_000)).map((n) => n.id).sort()).toEqual(["node-1", "node-2"]);
    // node-2 went silent a minute ago (its row says so); node-1 keeps beating. With a 30 s window
    // node-2 is out and node-1 in, whatever the machine's speed: no race between beat and window.
    const silentSince = new Date(Date.now() - 60_000);
    await db.prisma.gatewayNode.update({ where: { id: "node-2" }, data: { lastHeartbeatAt: silentSince } });
    const startedBeat = (await db.prisma.gatewayNode.findUniqueOrThrow({ where: { id: "node-1" } }))
      .lastHeartbeatAt;
    await expect
      .poll(
        async () =>
          (await db.prisma.gatewayNode.findUniqueOrThrow({ where: { id: "node-1" } })).lastHeartbeatAt >
          startedBeat,
        { timeout: 15_000 },
      )
      .toBe(true);
    expect((await listLiveNodes(db.prisma, 30_000)).map((n) => n.id)).toEqual(["node-1"]);
    await a.stop();
    await b.stop();
  });

  it("a heartbeat brings back a row that was pruned; prune removes only long-dead nodes", async () => {
    const node = new NodeRegistry({ prisma: db.prisma, id: "node-p", version: "1", intervalMs: 60_000 });
    await node.start();
    await db.prisma.gatewayNode.create({
      data: {
        id: "crashed",
        version: "0",
        startedAt: new Date(Date.now() - 3 * 86_400_000),
        lastHeartbeatAt: new Date(Date.now() - 2 * 86_400_000),
      },
    });
    expect(await pruneDeadNodes(db.prisma)).toBe(1);
    await db.prisma.gatewayNode.deleteMany({ where: { id: "node-p" } });
    await node.beat();
    expect((await listLiveNodes(db.prisma)).map((n) => n.id)).toEqual(["node-p"]);
    await node.stop();
  });

  it("generates a unique id by default", () => {
    const a = new NodeRegistry({ prisma: db.prisma, version: "1" });
    const b = new NodeRegistry({ prisma: db.prisma, version: "1" });
    expect(a.id).not.toBe(b.id);
    expect(a.id).toContain(String(process.pid));
  });
});
