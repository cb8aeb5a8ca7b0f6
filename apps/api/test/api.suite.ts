import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createSealer, hashToken } from "@gatehouse/shared/node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Harness, Reply } from "./harness.js";

// The REST API suite, run once per mode (api.postgres.test.ts, api.embedded.test.ts: separate files
// so that vitest runs the two modes in parallel).
export function apiSuite(mode: string, start: () => Promise<Harness>): void {
  // A real (tiny) OpenID provider for JWKS discovery: `/good` is a valid issuer, `/wrong-issuer`
  // serves a document naming another issuer, anything else 404.
  let oidc: Server;
  let oidcBase: string;
  beforeAll(async () => {
    oidc = createServer((req, res) => {
      const m = /^\/(good|wrong-issuer)\/\.well-known\/openid-configuration$/.exec(req.url ?? "");
      if (!m) {
        res.writeHead(404).end();
        return;
      }
      const issuer = m[1] === "good" ? `${oidcBase}/good` : "https://elsewhere.example";
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ issuer, jwks_uri: `${oidcBase}/${m[1]}/jwks` }));
    });
    await new Promise<void>((r) => oidc.listen(0, "127.0.0.1", r));
    oidcBase = `http://127.0.0.1:${(oidc.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => oidc.close(r));
  });

  describe(`REST API on ${mode}`, () => {
    let h: Harness;
    /** Every plaintext secret handed to or minted by the API; none may appear in any table. */
    const plaintexts: string[] = [];
    let seq = 0;
    const unique = (base: string) => `${base}-${++seq}-${Math.random().toString(36).slice(2, 6)}`;

    beforeAll(async () => {
      h = await start();
    });
    afterAll(async () => {
      await h?.close();
    });

    async function createTenant(slug = unique("t")) {
      const res = await h.request("POST", "/v1/tenants", { body: { slug, name: `Tenant ${slug}` } });
      expect(res.status).toBe(201);
      return res.body as { id: string; slug: string };
    }

    async function versionOf(tenantId: string): Promise<number> {
      const t = await h.prisma.tenant.findUniqueOrThrow({ where: { id: tenantId } });
      return t.configVersion;
    }

    /** Runs a write and checks it bumped the tenant's version by one and announced exactly that version. */
    async function expectBump<T>(tenantId: string, write: () => Promise<T>): Promise<T> {
      const before = await versionOf(tenantId);
      const result = await write();
      const after = await versionOf(tenantId);
      expect(after).toBe(before + 1);
      await h.waitForEvent(tenantId, { version: after });
      return result;
    }

    function fieldsOf(body: { error: { details?: { path: string }[] } }): string[] {
      return (body.error.details ?? []).map((d) => d.path);
    }

    describe("health, docs, errors", () => {
      test("/healthz and /readyz answer 200 without credentials", async () => {
        expect((await h.request("GET", "/healthz", { token: null })).status).toBe(200);
        const ready = await h.request("GET", "/readyz", { token: null });
        expect(ready.status).toBe(200);
        expect(ready.body.status).toBe("ready");
      });

      test("/metrics serves Prometheus text", async () => {
        const res = await h.request("GET", "/metrics", { token: null });
        expect(res.status).toBe(200);
        expect(res.body).toContain("gatehouse_api_http_request_duration_seconds");
      });

      test("/docs-json documents every route with schemas from zod; /docs serves the UI", async () => {
        const res = await h.request("GET", "/docs-json", { token: null });
        expect(res.status).toBe(200);
        const doc = res.body;
        const paths = Object.keys(doc.paths);
        for (const p of [
          "/v1/tenants",
          "/v1/tenants/{tenant}",
          "/v1/tenants/{tenant}/upstreams",
          "/v1/tenants/{tenant}/upstreams/{name}",
          "/v1/tenants/{tenant}/upstreams/{name}/tools",
          "/v1/tenants/{tenant}/api-keys",
          "/v1/tenants/{tenant}/api-keys/{id}",
          "/v1/tenants/{tenant}/identity-providers",
          "/v1/tenants/{tenant}/identity-providers/{id}",
          "/v1/tenants/{tenant}/policy",
          "/v1/tenants/{tenant}/policy/simulate",
          "/v1/tenants/{tenant}/tokens",
          "/v1/tenants/{tenant}/tokens/{id}",
        ]) {
          expect(paths).toContain(p);
        }
        expect(doc.paths["/v1/tenants"].post.requestBody.content["application/json"].schema.$ref).toBe(
          "#/components/schemas/TenantCreate",
        );
        expect(doc.components.schemas.TenantCreate.properties.slug.pattern).toBeDefined();
        expect(doc.components.schemas.UpstreamCreate.additionalProperties).toBe(false);
        const ui = await h.request("GET", "/docs", { token: null });
        expect(ui.status).toBe(200);
      });

      test("no credentials or a wrong token: 401 with WWW-Authenticate and the error shape", async () => {
        const none = await h.request("GET", "/v1/tenants", { token: null });
        expect(none.status).toBe(401);
        expect(none.headers["www-authenticate"]).toMatch(/^Bearer/);
        expect(none.body.error.code).toBe("UNAUTHENTICATED");
        const wrong = await h.request("GET", "/v1/tenants", { token: `${h.config.ADMIN_TOKEN}x` });
        expect(wrong.status).toBe(401);
        const fakeTenantToken = await h.request("GET", "/v1/tenants", { token: `mgt_${"a".repeat(43)}` });
        expect(fakeTenantToken.status).toBe(401);
      });

      test("unknown route: 404 in the error shape", async () => {
        const res = await h.request("GET", "/v1/nothing-here");
        expect(res.status).toBe(404);
        expect(res.body.error.code).toBe("NOT_FOUND");
      });

      test("malformed JSON: 400 PARSE_ERROR", async () => {
        const res = await h.request("POST", "/v1/tenants", { rawBody: '{"slug": "x",' });
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe("PARSE_ERROR");
      });

      // Issue 9: curl -d without -H "Content-Type: application/json" sent a form body, and the
      // answer listed slug and name as missing instead of naming the header.
      test("a body without Content-Type: application/json: 415 naming the header", async () => {
        const body = '{"slug":"ct-form","name":"Form"}';
        for (const contentType of ["application/x-www-form-urlencoded", "text/plain", null]) {
          const res = await h.request("POST", "/v1/tenants", { rawBody: body, contentType });
          expect(res.status, String(contentType)).toBe(415);
          expect(res.body.error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
          expect(res.body.error.message).toContain("Content-Type: application/json");
        }
        const put = await h.request("PUT", "/v1/tenants/ct-form/policy", {
          rawBody: '{"defaultEffect":"deny","rules":[]}',
          contentType: "application/x-www-form-urlencoded",
        });
        expect(put.status).toBe(415);
        const ok = await h.request("POST", "/v1/tenants", {
          rawBody: body,
          contentType: "application/json; charset=utf-8",
        });
        expect(ok.status).toBe(201);
      });

      test("missing body: 400 VALIDATION_FAILED", async () => {
        const res = await h.request("POST", "/v1/tenants");
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe("VALIDATION_FAILED");
      });
    });

    describe("tenants", () => {
      test("create returns id, slug, name, gatewayUrl, createdAt and announces the tenant", async () => {
        const slug = unique("acme");
        const res = await h.request("POST", "/v1/tenants", { body: { slug, name: "Acme" } });
        expect(res.status).toBe(201);
        expect(res.body).toMatchObject({
          slug,
          name: "Acme",
          gatewayUrl: `http://localhost:8080/t/${slug}/mcp`,
        });
        expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
        expect(Date.parse(res.body.createdAt)).not.toBeNaN();
        expect(res.body.settings.anonymousAccess).toBe(false);
        await h.waitForEvent(res.body.id, { version: 1 });
      });

      test("every bad field is named; unknown fields are rejected", async () => {
        const res = await h.request("POST", "/v1/tenants", {
          body: { slug: "-Bad", name: "", color: "red", settings: { auditRetentionDays: 0 } },
        });
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe("VALIDATION_FAILED");
        expect(fieldsOf(res.body).sort()).toEqual(["color", "name", "settings.auditRetentionDays", "slug"]);
        const missing = await h.request("POST", "/v1/tenants", { body: {} });
        expect(fieldsOf(missing.body).sort()).toEqual(["name", "slug"]);
        expect(missing.body.error.details[0].message).toBe("Required");
      });

      test("duplicate slug: 409 CONFLICT naming slug", async () => {
        const { slug } = await createTenant();
        const res = await h.request("POST", "/v1/tenants", { body: { slug, name: "Again" } });
        expect(res.status).toBe(409);
        expect(res.body.error.code).toBe("CONFLICT");
        expect(res.body.error.message).toContain("slug");
        expect(fieldsOf(res.body)).toEqual(["slug"]);
      });

      test("get by slug or id; 404 for an unknown one", async () => {
        const t = await createTenant();
        expect((await h.request("GET", `/v1/tenants/${t.slug}`)).body.id).toBe(t.id);
        expect((await h.request("GET", `/v1/tenants/${t.id}`)).body.slug).toBe(t.slug);
        const missing = await h.request("GET", "/v1/tenants/no-such-tenant");
        expect(missing.status).toBe(404);
        expect(missing.body.error.code).toBe("NOT_FOUND");
        expect((await h.request("GET", "/v1/tenants/00000000-0000-7000-8000-000000000000")).status).toBe(404);
      });

      test("patch merges settings, bumps the config version and announces it", async () => {
        const t = await createTenant();
        const res = await expectBump(t.id, () =>
          h.request("PATCH", `/v1/tenants/${t.slug}`, {
            body: { name: "Renamed", settings: { captureArguments: true, rateLimit: { perMinute: 100 } } },
          }),
        );
        expect(res.status).toBe(200);
        expect(res.body.name).toBe("Renamed");
        expect(res.body.settings).toMatchObject({
          captureArguments: true,
          rateLimit: { perMinute: 100 },
          auditRetentionDays: 30,
        });
        const again = await h.request("PATCH", `/v1/tenants/${t.id}`, {
          body: { settings: { auditRetentionDays: 7 } },
        });
        expect(again.body.settings).toMatchObject({ captureArguments: true, auditRetentionDays: 7 });
        const bad = await h.request("PATCH", `/v1/tenants/${t.id}`, {
          body: { settings: { allowedOrigins: ["nope"], x: 1 } },
        });
        expect(bad.status).toBe(400);
        expect(fieldsOf(bad.body).sort()).toEqual(["settings.allowedOrigins[0]", "settings.x"]);
      });

      test("list is paginated newest first with a cursor", async () => {
        const created = [];
        for (let i = 0; i < 5; i++) created.push(await createTenant());
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const res: Reply = await h.request(
            "GET",
            `/v1/tenants?limit=2${cursor ? `&cursor=${cursor}` : ""}`,
          );
          expect(res.status).toBe(200);
          expect(res.body.items.length).toBeLessThanOrEqual(2);
          seen.push(...res.body.items.map((t: { id: string }) => t.id));
          cursor = res.body.nextCursor;
          pages++;
        } while (cursor);
        expect(pages).toBeGreaterThanOrEqual(3);
        expect(new Set(seen).size).toBe(seen.length);
        const newestFirst = created.map((t) => t.id).reverse();
        expect(seen.slice(0, 5)).toEqual(newestFirst);
        const bad = await h.request("GET", "/v1/tenants?limit=0&cursor=nope&extra=1");
        expect(bad.status).toBe(400);
        expect(fieldsOf(bad.body).sort()).toEqual(["cursor", "extra", "limit"]);
        expect((await h.request("GET", "/v1/tenants?limit=201")).status).toBe(400);
      });
    });

    describe("upstreams", () => {
      test("create: toolPrefix defaults to name_, secrets sealed at rest and masked in answers", async () => {
        const t = await createTenant();
        const headerSecret = `hdr-${unique("secret")}`;
        const bearer = `tok-${unique("secret")}`;
        plaintexts.push(headerSecret, bearer);
        const res = await expectBump(t.id, () =>
          h.request("POST", `/v1/tenants/${t.slug}/upstreams`, {
            body: {
              name: "github",
              transport: "streamable-http",
              url: "https://mcp.example.com/mcp",
              headers: { "X-Org": headerSecret },
              auth: { mode: "bearer", token: bearer },
              timeoutMs: 5000,
            },
          }),
        );
        expect(res.status).toBe(201);
        expect(res.body).toMatchObject({
          name: "github",
          toolPrefix: "github_",
          transport: "streamable-http",
          enabled: true,
          headers: { "X-Org": "********" },
          auth: { mode: "bearer", token: "********" },
          timeoutMs: 5000,
        });
        expect(JSON.stringify(res.body)).not.toContain(headerSecret);
        const row = await h.prisma.upstream.findFirstOrThrow({ where: { tenantId: t.id, name: "github" } });
        const sealer = createSealer(h.config.SECRETS_KEY);
        expect(sealer.unsealJson(row.headersSealed!)).toEqual({ "X-Org": headerSecret });
        expect(sealer.unseal(row.authSecretSealed!)).toBe(bearer);
        expect(row.transport).toBe("streamable_http");

        const got = await h.request("GET", `/v1/tenants/${t.id}/upstreams/github`);
        expect(got.status).toBe(200);
        expect(JSON.stringify(got.body)).not.toContain(bearer);
        expect((await h.request("GET", `/v1/tenants/${t.slug}/upstreams/github/tools`)).body).toEqual({
          items: [],
          nextCursor: null,
        });
        // Once discovery has stored a catalog, that is what the route returns.
        const catalog = [
          { name: "get_issue", description: "Read an issue", inputSchema: { type: "object" } },
        ];
        await h.prisma.upstream.update({
          where: { id: row.id },
          data: { tools: catalog, toolsDiscoveredAt: new Date() },
        });
        expect((await h.request("GET", `/v1/tenants/${t.slug}/upstreams/github/tools`)).body).toEqual({
          items: catalog,
          nextCursor: null,
        });
        // Pages like every other list ({items, nextCursor}), in name order.
        const many = ["c-tool", "a-tool", "b-tool"].map((name) => ({
          name,
          inputSchema: { type: "object" },
        }));
        await h.prisma.upstream.update({ where: { id: row.id }, data: { tools: many } });
        const first = await h.request("GET", `/v1/tenants/${t.slug}/upstreams/github/tools?limit=2`);
        expect(first.body.items.map((x: { name: string }) => x.name)).toEqual(["a-tool", "b-tool"]);
        expect(first.body.nextCursor).toBe("b-tool");
        const second = await h.request(
          "GET",
          `/v1/tenants/${t.slug}/upstreams/github/tools?limit=2&cursor=${first.body.nextCursor}`,
        );
        expect(second.body).toEqual({ items: [many[0]], nextCursor: null });
      });

      test("stdio upstream with env; explicit toolPrefix", async () => {
        const t = await createTenant();
        const envSecret = `env-${unique("secret")}`;
        plaintexts.push(envSecret);
        const res = await h.request("POST", `/v1/tenants/${t.slug}/upstreams`, {
          body: {
            name: "fs",
            transport: "stdio",
            command: "npx",
            args: ["-y", "server-fs"],
            env: { TOKEN: envSecret },
            toolPrefix: "files.",
          },
        });
        expect(res.status).toBe(201);
        expect(res.body).toMatchObject({
          command: "npx",
          args: ["-y", "server-fs"],
          env: { TOKEN: "********" },
          toolPrefix: "files.",
        });
      });

      test("transport rules and every bad field are named", async () => {
        const t = await createTenant();
        const url = `/v1/tenants/${t.slug}/upstreams`;
        const noUrl = await h.request("POST", url, { body: { name: "a", transport: "sse" } });
        expect(noUrl.status).toBe(400);
        expect(fieldsOf(noUrl.body)).toEqual(["url"]);
        const noCommand = await h.request("POST", url, { body: { name: "a", transport: "stdio" } });
        expect(fieldsOf(noCommand.body)).toEqual(["command"]);
        const many = await h.request("POST", url, {
          body: {
            name: "Bad Name",
            transport: "carrier-pigeon",
            url: "ftp://x",
            auth: { mode: "bearer" },
            headers: { "bad header": "v" },
            timeoutMs: 1,
            colour: "blue",
          },
        });
        expect(many.status).toBe(400);
        expect(fieldsOf(many.body).sort()).toEqual(
          ["auth.token", "colour", "headers.bad header", "name", "timeoutMs", "transport", "url"].sort(),
        );
        const badMode = await h.request("POST", url, {
          body: { name: "a", transport: "sse", url: "https://x.example", auth: { mode: "magic" } },
        });
        expect(fieldsOf(badMode.body)).toEqual(["auth.mode"]);
        const headerMode = await h.request("POST", url, {
          body: {
            name: "a",
            transport: "sse",
            url: "https://x.example",
            auth: { mode: "header", value: "v" },
          },
        });
        expect(fieldsOf(headerMode.body)).toEqual(["auth.headerName"]);
      });

      test("duplicate name: 409 naming name", async () => {
        const t = await createTenant();
        const body = { name: "dup", transport: "sse", url: "https://x.example/sse" };
        expect((await h.request("POST", `/v1/tenants/${t.slug}/upstreams`, { body })).status).toBe(201);
        const res = await h.request("POST", `/v1/tenants/${t.slug}/upstreams`, { body });
        expect(res.status).toBe(409);
        expect(fieldsOf(res.body)).toEqual(["name"]);
      });

      test("patch: masked secrets are kept, new ones replace, transport rules hold, rename keeps a default prefix", async () => {
        const t = await createTenant();
        const base = `/v1/tenants/${t.slug}/upstreams`;
        await h.request("POST", base, {
          body: {
            name: "svc",
            transport: "streamable-http",
            url: "https://svc.example/mcp",
            headers: { "X-A": "alpha-secret-1", "X-B": "beta-secret-1" },
            auth: { mode: "header", headerName: "X-Key", value: "key-secret-1" },
          },
        });
        plaintexts.push("alpha-secret-1", "beta-secret-1", "key-secret-1", "beta-secret-2");
        const res = await expectBump(t.id, () =>
          h.request("PATCH", `${base}/svc`, {
            body: {
              description: "Service",
              headers: { "X-A": "********", "X-B": "beta-secret-2" },
              auth: { mode: "header", headerName: "X-Key", value: "********" },
            },
          }),
        );
        expect(res.status).toBe(200);
        expect(res.body.description).toBe("Service");
        const sealer = createSealer(h.config.SECRETS_KEY);
        const row = await h.prisma.upstream.findFirstOrThrow({ where: { tenantId: t.id, name: "svc" } });
        expect(sealer.unsealJson(row.headersSealed!)).toEqual({
          "X-A": "alpha-secret-1",
          "X-B": "beta-secret-2",
        });
        expect(sealer.unseal(row.authSecretSealed!)).toBe("key-secret-1");

        const toStdio = await h.request("PATCH", `${base}/svc`, { body: { transport: "stdio" } });
        expect(toStdio.status).toBe(400);
        expect(fieldsOf(toStdio.body)).toEqual(["command"]);
        const maskWithoutSecret = await h.request("PATCH", `${base}/svc`, {
          body: { headers: { "X-New": "********" } },
        });
        expect(fieldsOf(maskWithoutSecret.body)).toEqual(["headers.X-New"]);

        const renamed = await h.request("PATCH", `${base}/svc`, {
          body: { name: "svc2", enabled: false, timeoutMs: null },
        });
        expect(renamed.status).toBe(200);
        expect(renamed.body).toMatchObject({
          name: "svc2",
          toolPrefix: "svc2_",
          enabled: false,
          timeoutMs: null,
        });
        expect((await h.request("GET", `${base}/svc`)).status).toBe(404);
      });

      test("list, delete (announced), then 404", async () => {
        const t = await createTenant();
        const base = `/v1/tenants/${t.slug}/upstreams`;
        for (const name of ["one", "two", "three"]) {
          await h.request("POST", base, { body: { name, transport: "sse", url: "https://x.example/sse" } });
        }
        const page = await h.request("GET", `${base}?limit=2`);
        expect(page.body.items.map((u: { name: string }) => u.name)).toEqual(["three", "two"]);
        const next = await h.request("GET", `${base}?limit=2&cursor=${page.body.nextCursor}`);
        expect(next.body).toMatchObject({ items: [{ name: "one" }], nextCursor: null });
        const del = await expectBump(t.id, () => h.request("DELETE", `${base}/two`));
        expect(del.status).toBe(204);
        expect((await h.request("GET", `${base}/two`)).status).toBe(404);
        expect((await h.request("DELETE", `${base}/two`)).status).toBe(404);
        expect((await h.request("GET", `${base}/two/tools`)).status).toBe(404);
      });
    });

    describe("api keys", () => {
      test("create returns the key once; only its hash is stored; list never shows key or hash", async () => {
        const t = await createTenant();
        const res = await expectBump(t.id, () =>
          h.request("POST", `/v1/tenants/${t.slug}/api-keys`, {
            body: {
              name: "ci",
              agent: "scout",
              roles: ["research"],
              expiresAt: "2099-01-01T00:00:00Z",
              rateLimit: { perMinute: 60 },
            },
          }),
        );
        expect(res.status).toBe(201);
        const { key, id, prefix } = res.body;
        plaintexts.push(key);
        expect(key).toMatch(/^mgw_[0-9A-Za-z]{43}$/);
        expect(key.startsWith(prefix)).toBe(true);
        expect(res.body).toMatchObject({
          name: "ci",
          agent: "scout",
          roles: ["research"],
          rateLimit: { perMinute: 60 },
        });
        const row = await h.prisma.apiKey.findUniqueOrThrow({ where: { id } });
        expect(row.hash).toBe(hashToken(key));

        const list = await h.request("GET", `/v1/tenants/${t.slug}/api-keys`);
        expect(list.body.items).toHaveLength(1);
        expect(list.body.items[0]).not.toHaveProperty("key");
        expect(list.body.items[0]).not.toHaveProperty("hash");
        expect(JSON.stringify(list.body)).not.toContain(row.hash);
        const one = await h.request("GET", `/v1/tenants/${t.slug}/api-keys/${id}`);
        expect(one.body).toMatchObject({ id, prefix });
        expect(one.body).not.toHaveProperty("key");
      });

      test("validation names every field; expiresAt must be in the future", async () => {
        const t = await createTenant();
        const bad = await h.request("POST", `/v1/tenants/${t.slug}/api-keys`, {
          body: { roles: ["ok", ""], expiresAt: "tomorrow", rateLimit: { perMinute: 0 }, hash: "x" },
        });
        expect(bad.status).toBe(400);
        expect(fieldsOf(bad.body).sort()).toEqual([
          "expiresAt",
          "hash",
          "name",
          "rateLimit.perMinute",
          "roles[1]",
        ]);
        const past = await h.request("POST", `/v1/tenants/${t.slug}/api-keys`, {
          body: { name: "old", expiresAt: "2001-01-01T00:00:00Z" },
        });
        expect(past.status).toBe(400);
        expect(fieldsOf(past.body)).toEqual(["expiresAt"]);
      });

      test("delete revokes (announced); the key is gone for gateways", async () => {
        const t = await createTenant();
        const created = await h.request("POST", `/v1/tenants/${t.slug}/api-keys`, { body: { name: "temp" } });
        plaintexts.push(created.body.key);
        const del = await expectBump(t.id, () =>
          h.request("DELETE", `/v1/tenants/${t.slug}/api-keys/${created.body.id}`),
        );
        expect(del.status).toBe(204);
        expect(await h.prisma.apiKey.findFirst({ where: { hash: hashToken(created.body.key) } })).toBeNull();
        expect((await h.request("DELETE", `/v1/tenants/${t.slug}/api-keys/${created.body.id}`)).status).toBe(
          404,
        );
        expect((await h.request("DELETE", `/v1/tenants/${t.slug}/api-keys/not-a-uuid`)).status).toBe(404);
      });
    });

    describe("identity providers", () => {
      test("JWKS URI discovered from the issuer when omitted; create, patch, delete announced", async () => {
        const t = await createTenant();
        const base = `/v1/tenants/${t.slug}/identity-providers`;
        const res = await expectBump(t.id, () =>
          h.request("POST", base, {
            body: {
              name: "corp",
              issuer: `${oidcBase}/good`,
              audiences: ["gatehouse"],
              claimMappings: [{ claim: "groups", value: "eng", role: "research" }],
            },
          }),
        );
        expect(res.status).toBe(201);
        expect(res.body).toMatchObject({
          name: "corp",
          jwksUri: `${oidcBase}/good/jwks`,
          audiences: ["gatehouse"],
        });
        const id = res.body.id;

        const explicit = await h.request("POST", base, {
          body: {
            name: "explicit",
            issuer: "https://unreachable.invalid",
            jwksUri: "https://unreachable.invalid/keys",
          },
        });
        expect(explicit.status).toBe(201);

        const patched = await expectBump(t.id, () =>
          h.request("PATCH", `${base}/${id}`, { body: { roleClaim: "groups", audiences: [] } }),
        );
        expect(patched.body).toMatchObject({
          roleClaim: "groups",
          audiences: [],
          jwksUri: `${oidcBase}/good/jwks`,
        });
        const rediscover = await h.request("PATCH", `${base}/${id}`, {
          body: { issuer: `${oidcBase}/wrong-issuer` },
        });
        expect(rediscover.status).toBe(422);

        const list = await h.request("GET", base);
        expect(list.body.items.map((i: { name: string }) => i.name)).toEqual(["explicit", "corp"]);
        const dup = await h.request("POST", base, { body: { name: "corp", issuer: `${oidcBase}/good` } });
        expect(dup.status).toBe(409);
        expect(fieldsOf(dup.body)).toEqual(["name"]);

        expect((await expectBump(t.id, () => h.request("DELETE", `${base}/${id}`))).status).toBe(204);
        expect((await h.request("GET", `${base}/${id}`)).status).toBe(404);
      });

      test("failed discovery is a clear 422 naming the issuer", async () => {
        const t = await createTenant();
        const base = `/v1/tenants/${t.slug}/identity-providers`;
        const notFound = await h.request("POST", base, {
          body: { name: "x", issuer: `${oidcBase}/missing` },
        });
        expect(notFound.status).toBe(422);
        expect(notFound.body.error.code).toBe("UNPROCESSABLE");
        expect(notFound.body.error.message).toContain(`${oidcBase}/missing/.well-known/openid-configuration`);
        expect(fieldsOf(notFound.body)).toEqual(["issuer"]);
        const wrong = await h.request("POST", base, {
          body: { name: "x", issuer: `${oidcBase}/wrong-issuer` },
        });
        expect(wrong.status).toBe(422);
        expect(wrong.body.error.message).toContain("elsewhere.example");
        const invalid = await h.request("POST", base, {
          body: { name: "", issuer: "not a url", jwksUri: 3 },
        });
        expect(invalid.status).toBe(400);
        expect(fieldsOf(invalid.body).sort()).toEqual(["issuer", "jwksUri", "name"]);
      });
    });

    describe("policy", () => {
      const doc = {
        defaultEffect: "deny",
        rules: [
          {
            id: "researchers-read",
            effect: "allow",
            principals: ["role:research"],
            upstreams: ["github"],
            tools: ["get_*"],
          },
          { id: "no-drop", effect: "deny", upstreams: ["postgres"], tools: ["drop_*"] },
          {
            id: "admins-fs",
            effect: "allow",
            upstreams: ["fs"],
            tools: ["write_*"],
            when: "!args.path.startsWith('/etc')",
          },
        ],
      };

      test("GET before any PUT: version 0 and the default document", async () => {
        const t = await createTenant();
        const res = await h.request("GET", `/v1/tenants/${t.slug}/policy`);
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ version: 0, document: { defaultEffect: "deny" } });
      });

      test("PUT stores a new version (announced); GET returns it", async () => {
        const t = await createTenant();
        const put = await expectBump(t.id, () =>
          h.request("PUT", `/v1/tenants/${t.slug}/policy`, { body: doc }),
        );
        expect(put.status).toBe(200);
        expect(put.body.version).toBe(1);
        expect(put.body.createdBy).toBe("platform-admin");
        const second = await h.request("PUT", `/v1/tenants/${t.slug}/policy`, {
          body: { document: doc, version: 1 },
        });
        expect(second.body.version).toBe(2);
        const got = await h.request("GET", `/v1/tenants/${t.id}/policy`);
        expect(got.body.version).toBe(2);
        expect(got.body.document.rules.map((r: { id: string }) => r.id)).toEqual([
          "researchers-read",
          "no-drop",
          "admins-fs",
        ]);
        const stale = await h.request("PUT", `/v1/tenants/${t.slug}/policy`, {
          body: { document: doc, version: 1 },
        });
        expect(stale.status).toBe(409);
        expect(await h.prisma.policy.count({ where: { tenantId: t.id } })).toBe(2);
      });

      // Issue 9: `get_*` saved without a word, and tools/list came back empty, because the demo
      // upstream's tool is `get-sum`; a rule naming an upstream that does not exist said nothing.
      test("PUT warns (saving all the same) about unknown upstreams and tool patterns that match no current tool", async () => {
        const t = await createTenant();
        const created = await h.request("POST", `/v1/tenants/${t.slug}/upstreams`, {
          body: { name: "everything", transport: "streamable-http", url: "http://127.0.0.1:3001/mcp" },
        });
        expect(created.status).toBe(201);
        const fresh = await h.request("PUT", `/v1/tenants/${t.slug}/policy`, {
          body: { rules: [{ id: "r", effect: "allow", tools: ["get_*"] }] },
        });
        // Before the first discovery nothing can be said about tool names.
        expect(fresh.body.warnings).toEqual([]);
        await h.prisma.upstream.updateMany({
          where: { tenantId: t.id, name: "everything" },
          data: { tools: [{ name: "echo" }, { name: "get-sum" }] },
        });
        const res = await h.request("PUT", `/v1/tenants/${t.slug}/policy`, {
          body: {
            defaultEffect: "deny",
            rules: [
              { id: "ok", effect: "allow", upstreams: ["everything"], tools: ["echo", "get-*"] },
              { id: "underscore", effect: "allow", tools: ["get_*"] },
              { id: "prefixed", effect: "allow", upstreams: ["every*"], tools: ["everything_echo"] },
              { id: "ghost", effect: "deny", upstreams: ["github"], tools: ["delete_*"] },
            ],
          },
        });
        expect(res.status).toBe(200);
        expect(res.body.version).toBe(2);
        const warnings = res.body.warnings as { ruleId: string; path: string; message: string }[];
        expect(warnings.map((w) => [w.ruleId, w.path])).toEqual([
          ["underscore", "rules.1.tools.0"],
          ["prefixed", "rules.2.tools.0"],
          ["ghost", "rules.3.upstreams.0"],
        ]);
        expect(warnings[0]!.message).toContain("echo, get-sum");
        expect(warnings[1]!.message).toContain('without "everything_"');
        expect(warnings[2]!.message).toContain("upstreams are everything");
      });

      test("a bad CEL condition or rule is a 400 naming it", async () => {
        const t = await createTenant();
        const badCel = await h.request("PUT", `/v1/tenants/${t.slug}/policy`, {
          body: {
            defaultEffect: "deny",
            rules: [doc.rules[0], { id: "broken", effect: "allow", when: "args.path.startsWith(" }],
          },
        });
        expect(badCel.status).toBe(400);
        expect(badCel.body.error.code).toBe("VALIDATION_FAILED");
        expect(JSON.stringify(badCel.body.error)).toContain("broken");
        expect(fieldsOf(badCel.body).some((p) => p.startsWith("rules[1]"))).toBe(true);
        const badRule = await h.request("PUT", `/v1/tenants/${t.slug}/policy`, {
          body: { defaultEffect: "maybe", rules: [{ id: "x", effect: "allow", extra: true }] },
        });
        expect(badRule.status).toBe(400);
        expect(fieldsOf(badRule.body).length).toBeGreaterThanOrEqual(2);
        const inEnvelope = await h.request("PUT", `/v1/tenants/${t.slug}/policy`, {
          body: { document: { rules: [{ id: "x", effect: "sometimes" }] } },
        });
        expect(inEnvelope.status).toBe(400);
        expect(fieldsOf(inEnvelope.body).every((p) => p.startsWith("document."))).toBe(true);
        expect(await h.prisma.policy.count({ where: { tenantId: t.id } })).toBe(0);
      });

      test("simulate names the deciding rule", async () => {
        const t = await createTenant();
        await h.request("PUT", `/v1/tenants/${t.slug}/policy`, { body: doc });
        const sim = (body: unknown) => h.request("POST", `/v1/tenants/${t.slug}/policy/simulate`, { body });
        const allow = await sim({
          principal: { roles: ["research"] },
          upstream: "github",
          tool: "get_issue",
        });
        expect(allow.status).toBe(200);
        expect(allow.body).toMatchObject({ decision: "allow", ruleId: "researchers-read" });
        const deny = await sim({
          principal: { roles: ["research"] },
          upstream: "postgres",
          tool: "drop_table",
        });
        expect(deny.body).toMatchObject({ decision: "deny", ruleId: "no-drop" });
        const byDefault = await sim({ principal: {}, upstream: "github", tool: "get_issue" });
        expect(byDefault.body).toMatchObject({ decision: "deny", ruleId: null });
        const cel = await sim({
          principal: {},
          upstream: "fs",
          tool: "write_file",
          arguments: { path: "/tmp/x" },
        });
        expect(cel.body).toMatchObject({ decision: "allow", ruleId: "admins-fs" });
        const bad = await sim({ principal: { roles: "admin" }, tool: 3 });
        expect(bad.status).toBe(400);
        expect(fieldsOf(bad.body).sort()).toEqual(["principal.roles", "tool", "upstream"]);
      });
    });

    describe("tenant-scoped admin tokens", () => {
      let a: { id: string; slug: string };
      let b: { id: string; slug: string };
      let adminA: string;
      let viewerA: string;
      let bKeyId: string;

      beforeAll(async () => {
        a = await createTenant();
        b = await createTenant();
        const res = await h.request("POST", `/v1/tenants/${a.slug}/tokens`, { body: { name: "ops" } });
        expect(res.status).toBe(201);
        expect(res.body.token).toMatch(/^mgt_/);
        expect(res.body.role).toBe("admin");
        adminA = res.body.token;
        const viewer = await h.request("POST", `/v1/tenants/${a.id}/tokens`, {
          token: adminA,
          body: { name: "ro", role: "viewer" },
        });
        expect(viewer.status).toBe(201);
        viewerA = viewer.body.token;
        plaintexts.push(adminA, viewerA);
        await h.request("POST", `/v1/tenants/${b.slug}/upstreams`, {
          body: { name: "secret-b", transport: "sse", url: "https://b.example/sse" },
        });
        const key = await h.request("POST", `/v1/tenants/${b.slug}/api-keys`, { body: { name: "b-key" } });
        plaintexts.push(key.body.key);
        bKeyId = key.body.id;
      });

      test("stored hashed; listed without the token", async () => {
        const row = await h.prisma.adminToken.findUniqueOrThrow({ where: { hash: hashToken(adminA) } });
        expect(row.tenantId).toBe(a.id);
        const list = await h.request("GET", `/v1/tenants/${a.slug}/tokens`, { token: adminA });
        expect(list.status).toBe(200);
        expect(list.body.items).toHaveLength(2);
        expect(JSON.stringify(list.body)).not.toContain(adminA);
        expect(list.body.items[0]).not.toHaveProperty("hash");
      });

      test("works on its own tenant", async () => {
        expect((await h.request("GET", `/v1/tenants/${a.slug}`, { token: adminA })).status).toBe(200);
        const up = await h.request("POST", `/v1/tenants/${a.slug}/upstreams`, {
          token: adminA,
          body: { name: "mine", transport: "sse", url: "https://a.example/sse" },
        });
        expect(up.status).toBe(201);
        const pol = await h.request("PUT", `/v1/tenants/${a.slug}/policy`, {
          token: adminA,
          body: { defaultEffect: "allow", rules: [] },
        });
        expect(pol.body.createdBy).toMatch(/^token:/);
      });

      test("cannot see or touch another tenant: 404, as if it did not exist", async () => {
        for (const [method, path] of [
          ["GET", `/v1/tenants/${b.slug}`],
          ["GET", `/v1/tenants/${b.id}`],
          ["PATCH", `/v1/tenants/${b.slug}`],
          ["DELETE", `/v1/tenants/${b.slug}`],
          ["GET", `/v1/tenants/${b.slug}/upstreams`],
          ["GET", `/v1/tenants/${b.slug}/upstreams/secret-b`],
          ["DELETE", `/v1/tenants/${b.slug}/upstreams/secret-b`],
          ["GET", `/v1/tenants/${b.slug}/api-keys`],
          ["DELETE", `/v1/tenants/${b.slug}/api-keys/${bKeyId}`],
          ["GET", `/v1/tenants/${b.slug}/policy`],
          ["GET", `/v1/tenants/${b.slug}/tokens`],
          ["POST", `/v1/tenants/${b.slug}/tokens`],
        ] as const) {
          const res = await h.request(method, path, {
            token: adminA,
            body: method === "PATCH" || method === "POST" ? { name: "x" } : undefined,
          });
          expect(res.status, `${method} ${path}`).toBe(404);
        }
        // B's object through A's path: not found either.
        expect(
          (await h.request("DELETE", `/v1/tenants/${a.slug}/api-keys/${bKeyId}`, { token: adminA })).status,
        ).toBe(404);
        expect(await h.prisma.apiKey.count({ where: { id: bKeyId } })).toBe(1);
        expect(await h.prisma.upstream.count({ where: { tenantId: b.id } })).toBe(1);
      });

      test("cannot create or list tenants: 403", async () => {
        expect((await h.request("GET", "/v1/tenants", { token: adminA })).status).toBe(403);
        const create = await h.request("POST", "/v1/tenants", {
          token: adminA,
          body: { slug: unique("x"), name: "x" },
        });
        expect(create.status).toBe(403);
        expect(create.body.error.code).toBe("FORBIDDEN");
      });

      test("roles: a viewer reads only; an admin cannot mint an owner token or delete the tenant", async () => {
        expect((await h.request("GET", `/v1/tenants/${a.slug}/upstreams`, { token: viewerA })).status).toBe(
          200,
        );
        const write = await h.request("POST", `/v1/tenants/${a.slug}/api-keys`, {
          token: viewerA,
          body: { name: "x" },
        });
        expect(write.status).toBe(403);
        const owner = await h.request("POST", `/v1/tenants/${a.slug}/tokens`, {
          token: adminA,
          body: { name: "o", role: "owner" },
        });
        expect(owner.status).toBe(403);
        expect((await h.request("DELETE", `/v1/tenants/${a.slug}`, { token: adminA })).status).toBe(403);
      });

      test("revoked tokens are refused at once", async () => {
        const res = await h.request("POST", `/v1/tenants/${a.slug}/tokens`, { body: { name: "short" } });
        plaintexts.push(res.body.token);
        expect((await h.request("GET", `/v1/tenants/${a.slug}`, { token: res.body.token })).status).toBe(200);
        expect(
          (await h.request("DELETE", `/v1/tenants/${a.slug}/tokens/${res.body.id}`, { token: adminA }))
            .status,
        ).toBe(204);
        expect((await h.request("GET", `/v1/tenants/${a.slug}`, { token: res.body.token })).status).toBe(401);
      });
    });

    test("deleting a tenant removes everything it owns and announces deleted: true", async () => {
      const t = await createTenant();
      await h.request("POST", `/v1/tenants/${t.slug}/upstreams`, {
        body: { name: "u", transport: "sse", url: "https://x.example/sse" },
      });
      const key = await h.request("POST", `/v1/tenants/${t.slug}/api-keys`, { body: { name: "k" } });
      plaintexts.push(key.body.key);
      await h.request("PUT", `/v1/tenants/${t.slug}/policy`, { body: { defaultEffect: "allow", rules: [] } });
      const tok = await h.request("POST", `/v1/tenants/${t.slug}/tokens`, { body: { name: "t" } });
      plaintexts.push(tok.body.token);
      const version = await versionOf(t.id);

      const del = await h.request("DELETE", `/v1/tenants/${t.slug}`);
      expect(del.status).toBe(204);
      await h.waitForEvent(t.id, { deleted: true, version: version + 1 });
      expect((await h.request("GET", `/v1/tenants/${t.id}`)).status).toBe(404);
      const where = { where: { tenantId: t.id } };
      expect(await h.prisma.upstream.count(where)).toBe(0);
      expect(await h.prisma.apiKey.count(where)).toBe(0);
      expect(await h.prisma.policy.count(where)).toBe(0);
      expect(await h.prisma.adminToken.count(where)).toBe(0);
      expect((await h.request("GET", `/v1/tenants/${t.slug}`, { token: tok.body.token })).status).toBe(401);
    });

    test("no key, token or secret is stored in plain text anywhere", async () => {
      expect(plaintexts.length).toBeGreaterThan(8);
      const tables = await h.prisma.$queryRawUnsafe<{ tablename: string }[]>(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
      );
      let dump = "";
      for (const { tablename } of tables) {
        const rows = await h.prisma.$queryRawUnsafe<unknown[]>(`SELECT * FROM "${tablename}"`);
        dump += JSON.stringify(rows, (_k, v) => (typeof v === "bigint" ? String(v) : v));
      }
      expect(dump).toContain("mgw_"); // prefixes are visible by design
      for (const secret of plaintexts)
        expect(dump.includes(secret), `plaintext found: ${secret.slice(0, 8)}…`).toBe(false);
    });
  });
}
