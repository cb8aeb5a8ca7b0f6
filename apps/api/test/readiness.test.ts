import { randomBytes } from "node:crypto";
import { generateSecretsKey } from "@gatehouse/shared/node";
import type { NestFastifyApplication } from "@nestjs/platform-fastify";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createApiApp } from "../src/app.js";
import { apiConfig } from "../src/config/api.config.js";

// A database that does not answer (nothing listens on port 1): alive, but not ready.
let app: NestFastifyApplication;
const adminToken = randomBytes(16).toString("hex");
beforeAll(async () => {
  app = await createApiApp(
    apiConfig({
      ADMIN_TOKEN: adminToken,
      SECRETS_KEY: generateSecretsKey(),
      DATABASE_URL: "postgres://postgres@127.0.0.1:1/none",
      LOG_LEVEL: "silent",
    }),
  );
});
afterAll(async () => {
  await app?.close();
});

test("/healthz stays 200 while /readyz answers 503 SERVICE_UNAVAILABLE", async () => {
  const fastify = app.getHttpAdapter().getInstance();
  expect((await fastify.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
  const ready = await fastify.inject({ method: "GET", url: "/readyz" });
  expect(ready.statusCode).toBe(503);
  expect(ready.json().error.code).toBe("SERVICE_UNAVAILABLE");
});

// Found by the fault suite (test/chaos, "Postgres down"): routes answered 500 INTERNAL.
test("a route answers 503 SERVICE_UNAVAILABLE naming the database while it is unreachable", async () => {
  const fastify = app.getHttpAdapter().getInstance();
  const res = await fastify.inject({
    method: "GET",
    url: "/v1/tenants",
    headers: { authorization: `Bearer ${adminToken}` },
  });
  expect(res.statusCode).toBe(503);
  expect(res.json().error.code).toBe("SERVICE_UNAVAILABLE");
  expect(res.json().error.message).toMatch(/database/i);
});
