import { randomBytes } from "node:crypto";
import { generateSecretsKey } from "@gatehouse/shared/node";
import type { NestFastifyApplication } from "@nestjs/platform-fastify";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createApiApp } from "../src/app.js";
import { apiConfig } from "../src/config/api.config.js";

// A database that does not answer (nothing listens on port 1): alive, but not ready.
let app: NestFastifyApplication;
beforeAll(async () => {
  app = await createApiApp(
    apiConfig({
      ADMIN_TOKEN: randomBytes(16).toString("hex"),
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
