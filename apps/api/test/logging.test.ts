import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { createDb, type Db } from "@gatehouse/db";
import { createTestDatabase, type TestDatabase } from "@gatehouse/db/testing";
import { InProcessBus } from "@gatehouse/shared";
import { generateSecretsKey } from "@gatehouse/shared/node";
import type { NestFastifyApplication } from "@nestjs/platform-fastify";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createApiApp } from "../src/app.js";
import { createLogger } from "../src/common/logger.js";
import { apiConfig } from "../src/config/api.config.js";

// At the most verbose level, nothing secret reaches the log: not the Authorization header, not
// keys minted, not upstream secrets sent in bodies.
let database: TestDatabase;
let db: Db;
let app: NestFastifyApplication;
let logged = "";
const config = apiConfig({
  ADMIN_TOKEN: `platform-${randomBytes(16).toString("hex")}`,
  SECRETS_KEY: generateSecretsKey(),
  LOG_LEVEL: "trace",
});

beforeAll(async () => {
  database = await createTestDatabase();
  db = await createDb({ databaseUrl: database.url });
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logged += chunk.toString();
      done();
    },
  });
  app = await createApiApp(config, { db, bus: new InProcessBus(), logger: createLogger("trace", sink) });
});

afterAll(async () => {
  await app?.close();
  await db?.close();
  await database?.drop();
});

test("the log never contains the Authorization header, minted keys or upstream secrets", async () => {
  const fastify = app.getHttpAdapter().getInstance();
  const auth = { authorization: `Bearer ${config.ADMIN_TOKEN}`, "content-type": "application/json" };
  const send = (method: "POST" | "GET", url: string, body?: unknown) =>
    fastify.inject({ method, url, headers: auth, ...(body ? { payload: JSON.stringify(body) } : {}) });

  await send("POST", "/v1/tenants", { slug: "logs", name: "Logs" });
  const upstreamSecret = `upstream-secret-${randomBytes(8).toString("hex")}`;
  await send("POST", "/v1/tenants/logs/upstreams", {
    name: "x",
    transport: "sse",
    url: "https://x.example/sse",
    headers: { "X-Secret": upstreamSecret },
    auth: { mode: "bearer", token: upstreamSecret },
  });
  const key = (await send("POST", "/v1/tenants/logs/api-keys", { name: "k" })).json().key as string;
  const token = (await send("POST", "/v1/tenants/logs/tokens", { name: "t" })).json().token as string;
  await fastify.inject({
    method: "GET",
    url: "/v1/tenants/logs",
    headers: { authorization: `Bearer ${token}` },
  });
  await fastify.inject({
    method: "GET",
    url: "/v1/tenants",
    headers: { authorization: "Bearer wrong-token-value" },
  });

  expect(logged).toContain("/v1/tenants/logs/api-keys"); // requests are logged…
  for (const secret of [
    config.ADMIN_TOKEN,
    config.SECRETS_KEY,
    upstreamSecret,
    key,
    token,
    "wrong-token-value",
  ]) {
    expect(logged.includes(secret), `secret in log: ${secret.slice(0, 6)}…`).toBe(false); // …secrets are not
  }
  expect(logged.toLowerCase()).not.toContain("bearer ");
});
