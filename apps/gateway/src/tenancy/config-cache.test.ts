import { BusChannel, InProcessBus, type TenantSnapshot } from "@gatehouse/shared";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { TenantConfigCache } from "./config-cache.js";

const ID = "0190f0a0-0000-7000-8000-000000000001";

function snapshot(version: number): TenantSnapshot {
  return {
    tenantId: ID,
    slug: "acme",
    version,
    settings: {
      anonymousAccess: false,
      allowedOrigins: [],
      auditRetentionDays: 30,
      captureArguments: false,
      rateLimit: null,
    },
    apiKeys: [],
    identityProviders: [],
    upstreams: [],
    policy: { defaultEffect: "deny", rules: [] },
  } as TenantSnapshot;
}

function setup() {
  const bus = new InProcessBus();
  let version = 1;
  let loads = 0;
  const cache = new TenantConfigCache({
    prisma: {} as never,
    bus,
    publicUrl: "http://localhost:8080",
    logger: pino({ level: "silent" }),
    load: async (ref) => {
      loads++;
      await new Promise((r) => setTimeout(r, 10));
      return ref === "acme" || ref === ID ? snapshot(version) : null;
    },
  });
  return {
    bus,
    cache,
    setVersion: (v: number) => {
      version = v;
    },
    loads: () => loads,
  };
}

describe("tenant config cache", () => {
  it("loads once for concurrent first uses, by slug or id, then serves from memory", async () => {
    const { cache, loads } = setup();
    await cache.start();
    const all = await Promise.all([cache.get("acme"), cache.get("acme"), cache.get("acme")]);
    expect(all.every((s) => s === all[0])).toBe(true);
    expect(await cache.get(ID)).toBe(all[0]);
    expect(loads()).toBe(1);
    expect(all[0]?.gatewayUrl).toBe("http://localhost:8080/t/acme/mcp");
  });

  it("remembers unknown tenants briefly and never loads garbage refs", async () => {
    const { cache, loads } = setup();
    expect(await cache.get("nope")).toBeNull();
    expect(await cache.get("nope")).toBeNull();
    expect(await cache.get("../../etc")).toBeNull();
    expect(loads()).toBe(1);
  });

  it("reloads on a newer bus event, ignores older ones, drops on delete", async () => {
    const { bus, cache, setVersion } = setup();
    await cache.start();
    await cache.get("acme");
    const changes: Array<number | null> = [];
    cache.onChange((_id, next) => changes.push(next?.version ?? null));
    await bus.publish(BusChannel.config, { tenantId: ID, version: 1 });
    setVersion(3);
    await bus.publish(BusChannel.config, { tenantId: ID, version: 3 });
    await new Promise((r) => setTimeout(r, 50));
    expect(cache.peek("acme")?.version).toBe(3);
    await bus.publish(BusChannel.config, { tenantId: ID, version: 3, deleted: true });
    await new Promise((r) => setTimeout(r, 10));
    expect(cache.peek("acme")).toBeUndefined();
    expect(changes).toEqual([3, null]);
    await bus.publish(BusChannel.config, { nonsense: true });
  });
});
