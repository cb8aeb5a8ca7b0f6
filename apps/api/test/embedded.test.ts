import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { generateSecretsKey } from "@gatehouse/shared/node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startEmbedded } from "../src/embedded.js";

// `npm start` without DATABASE_URL / REDIS_URL: PGlite under DATA_DIR, secrets generated once.
describe("embedded entry", () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "gatehouse-embedded-"));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  // The embedded gateway node starts too: any free port, like the API.
  const env = () => ({
    DATA_DIR: dataDir,
    API_PORT: "0",
    API_HOST: "127.0.0.1",
    GATEWAY_PORT: "0",
    GATEWAY_METRICS_PORT: "0",
    GATEWAY_HOST: "127.0.0.1",
    // The console has its own test (test/e2e/gateway-ops.test.ts, embedded entry).
    WEB_PORT: "off",
    LOG_LEVEL: "silent",
  });

  test("first start generates, stores (0600) and prints the secrets; later starts reuse them and print none", async () => {
    let printed = "";
    const first = await startEmbedded(env(), (text) => {
      printed += text;
    });
    let token: string;
    try {
      const file = join(dataDir, "secrets.json");
      const stored = JSON.parse(await readFile(file, "utf8"));
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      token = stored.ADMIN_TOKEN;
      expect(token).toMatch(/^mgt_/);
      expect(stored.SECRETS_KEY).toMatch(/^[0-9a-f]{64}$/);
      expect(printed).toContain(`ADMIN_TOKEN=${token}`);
      expect(printed).toContain(`SECRETS_KEY=${stored.SECRETS_KEY}`);
      expect(printed).toContain(`${first.apiUrl}/v1`);
      expect(printed).toContain("/t/{tenant}/mcp");
      expect(printed).toContain("PGlite");

      const res = await fetch(`${first.apiUrl}/v1/tenants`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ slug: "homelab", name: "Homelab" }),
      });
      expect(res.status).toBe(201);
    } finally {
      await first.close();
    }

    let printedAgain = "";
    const second = await startEmbedded(env(), (text) => {
      printedAgain += text;
    });
    try {
      expect(printedAgain).not.toContain(token);
      expect(printedAgain).not.toContain("SECRETS_KEY=");
      expect(printedAgain).toContain(second.apiUrl);
      // Same token, same data: the tenant made by the first start is still there.
      const res = await fetch(`${second.apiUrl}/v1/tenants/homelab`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(200);
    } finally {
      await second.close();
    }
  }, 90_000);

  test("variables from the environment win over the file and are never printed", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gatehouse-embedded-env-"));
    const adminToken = `env-token-${"x".repeat(20)}`;
    let printed = "";
    const app = await startEmbedded(
      { ...env(), DATA_DIR: dir, ADMIN_TOKEN: adminToken, SECRETS_KEY: generateSecretsKey() },
      (text) => {
        printed += text;
      },
    );
    try {
      expect(printed).not.toContain(adminToken);
      expect(printed).not.toContain("ADMIN_TOKEN=");
      const res = await fetch(`${app.apiUrl}/v1/tenants`, {
        headers: { authorization: `Bearer ${adminToken}` },
      });
      expect(res.status).toBe(200);
    } finally {
      await app.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  // Issue 9: `npm start` on a laptop must not put the admin API on the local network.
  test("binds loopback by default; HOST=0.0.0.0 opens the API and the gateway to other machines", async () => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === "IPv4" && !i.internal)?.address;
    const { API_HOST: _a, GATEWAY_HOST: _g, ...noHosts } = env();
    const reach = async (url: string, host: string) => {
      const u = new URL(url);
      return fetch(`http://${host}:${u.port}/healthz`).then(
        (r) => r.status,
        (err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.message,
      );
    };

    let printed = "";
    const closed = await startEmbedded(noHosts, (text) => {
      printed += text;
    });
    try {
      expect(closed.apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(closed.gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(printed).toContain("HOST=0.0.0.0");
      expect(await reach(closed.apiUrl, "127.0.0.1")).toBe(200);
      expect(await reach(closed.gatewayUrl, "127.0.0.1")).toBe(200);
      if (external) {
        expect(await reach(closed.apiUrl, external)).toBe("ECONNREFUSED");
        expect(await reach(closed.gatewayUrl, external)).toBe("ECONNREFUSED");
      }
    } finally {
      await closed.close();
    }

    const open = await startEmbedded({ ...noHosts, HOST: "0.0.0.0" }, () => {});
    try {
      expect(await reach(open.apiUrl, external ?? "127.0.0.1")).toBe(200);
      expect(await reach(open.gatewayUrl, external ?? "127.0.0.1")).toBe(200);
    } finally {
      await open.close();
    }
  }, 90_000);
});
