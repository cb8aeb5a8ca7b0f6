// Regressions for the holes of issue #8 closed in the control plane: each test here failed on the
// code before its fix. Run on Postgres + Redis (the fixes are in services, not in the storage mode).
import { randomUUID } from "node:crypto";
import { connectLink, createSealer, UpstreamTokens } from "@gatehouse/shared/node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Harness, startDistributed } from "./harness.js";

let h: Harness;
let seq = 0;
const unique = (base: string) => `${base}-${++seq}-${Math.random().toString(36).slice(2, 6)}`;

beforeAll(async () => {
  h = await startDistributed();
});
afterAll(async () => {
  await h?.close();
});

async function createTenant(slug = unique("t")) {
  const res = await h.request("POST", "/v1/tenants", { body: { slug, name: `Tenant ${slug}` } });
  expect(res.status).toBe(201);
  return res.body as { id: string; slug: string };
}

function fieldsOf(body: { error: { details?: { path: string }[] } }): string[] {
  return (body.error.details ?? []).map((d) => d.path);
}

describe("policy patterns cannot stall the API (#8.2)", () => {
  // On the old code each of these requests froze the process for good (a backtracking RegExp).
  test("a `*a*a*a…*b` glob is simulated against a long near-miss and answers", async () => {
    const t = await createTenant();
    const glob = `${"*a".repeat(30)}*b`;
    const put = await h.request("PUT", `/v1/tenants/${t.slug}/policy`, {
      body: { defaultEffect: "deny", rules: [{ id: "stars", effect: "allow", tools: [glob] }] },
    });
    expect(put.status).toBe(200);
    const sim = await h.request("POST", `/v1/tenants/${t.slug}/policy/simulate`, {
      body: { principal: {}, upstream: "u", tool: "a".repeat(200) },
    });
    expect(sim.status).toBe(200);
    expect(sim.body).toMatchObject({ decision: "deny", ruleId: null });
    const hit = await h.request("POST", `/v1/tenants/${t.slug}/policy/simulate`, {
      body: { principal: {}, upstream: "u", tool: `${"a".repeat(199)}b` },
    });
    expect(hit.body).toMatchObject({ decision: "allow", ruleId: "stars" });
  }, 120_000);

  test("a CEL matches() pattern that backtracks on JavaScript's RegExp runs in linear time", async () => {
    const t = await createTenant();
    const pattern = `${".*a".repeat(20)}.*b`;
    const put = await h.request("PUT", `/v1/tenants/${t.slug}/policy`, {
      body: {
        defaultEffect: "allow",
        rules: [{ id: "no-ab", effect: "deny", when: `args.q.matches('${pattern}')` }],
      },
    });
    expect(put.status).toBe(200);
    const sim = (q: string) =>
      h.request("POST", `/v1/tenants/${t.slug}/policy/simulate`, {
        body: { principal: {}, upstream: "u", tool: "t", arguments: { q } },
      });
    expect((await sim("a".repeat(4000))).body).toMatchObject({ decision: "allow", ruleId: null });
    expect((await sim(`${"a".repeat(4000)}b`)).body).toMatchObject({ decision: "deny", ruleId: "no-ab" });
  }, 120_000);

  test("a matches() pattern RE2 cannot run is refused at save, naming the rule", async () => {
    const t = await createTenant();
    const put = await h.request("PUT", `/v1/tenants/${t.slug}/policy`, {
      body: { rules: [{ id: "lookbehind", effect: "deny", when: "args.q.matches('(?<=a)b')" }] },
    });
    expect(put.status).toBe(400);
    expect(fieldsOf(put.body)).toEqual(["rules[0].when"]);
    expect(JSON.stringify(put.body)).toContain('rule \\"lookbehind\\"');
  });
});

describe("a tenant slug cannot be another tenant's id (#8.5)", () => {
  test("UUID-shaped slugs are refused on create and on rename, naming `slug`", async () => {
    const id = randomUUID();
    for (const slug of [id, `${id.slice(0, 8)}-0000-4000-8000-000000000000`]) {
      const res = await h.request("POST", "/v1/tenants", { body: { slug, name: "x" } });
      expect(res.status).toBe(400);
      expect(fieldsOf(res.body)).toEqual(["slug"]);
    }
    const t = await createTenant();
    const other = await createTenant();
    const rename = await h.request("PATCH", `/v1/tenants/${t.slug}`, { body: { slug: other.id } });
    expect(rename.status).toBe(400);
    expect(fieldsOf(rename.body)).toEqual(["slug"]);
    expect((await h.prisma.tenant.findUniqueOrThrow({ where: { id: t.id } })).slug).toBe(t.slug);
  });

  test("an id-shaped reference resolves by id only, even where an older row has that slug", async () => {
    const victimId = randomUUID();
    // Written straight to the database, squatter first: the API refuses such a slug now, older rows may hold one.
    const squatter = await h.prisma.tenant.create({ data: { slug: victimId, name: "squatter" } });
    await h.prisma.tenant.create({ data: { id: victimId, slug: unique("victim"), name: "victim" } });
    const got = await h.request("GET", `/v1/tenants/${victimId}`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: victimId, name: "victim" });
    const upper = await h.request("GET", `/v1/tenants/${victimId.toUpperCase()}`);
    expect(upper.body).toMatchObject({ id: victimId });
    // The squatter's own admin token gets nothing of the victim by that reference.
    const token = await h.request("POST", `/v1/tenants/${squatter.id}/tokens`, {
      body: { name: "ops", role: "admin" },
    });
    expect(token.status).toBe(201);
    const asSquatter = await h.request("GET", `/v1/tenants/${victimId}/upstreams`, {
      token: token.body.token,
    });
    expect(asSquatter.status).toBe(404);
  });
});

describe("a change of destination never takes the secrets along (#8.4)", () => {
  const sealer = () => createSealer(h.config.SECRETS_KEY);

  test("PATCHing an upstream's url needs its bearer token and static headers sent again", async () => {
    const t = await createTenant();
    const created = await h.request("POST", `/v1/tenants/${t.slug}/upstreams`, {
      body: {
        name: "gh",
        transport: "streamable-http",
        url: "https://mcp.example.com/mcp",
        headers: { "X-Key": "header-secret-1" },
        auth: { mode: "bearer", token: "bearer-secret-1" },
      },
    });
    expect(created.status).toBe(201);
    const moved = "https://collector.example.net/mcp";
    const stored = () => h.prisma.upstream.findFirstOrThrow({ where: { tenantId: t.id, name: "gh" } });

    for (const body of [
      { url: moved },
      { url: moved, auth: { mode: "bearer", token: "********" }, headers: { "X-Key": "********" } },
    ]) {
      const res = await h.request("PATCH", `/v1/tenants/${t.slug}/upstreams/gh`, { body });
      expect(res.status).toBe(400);
      expect(fieldsOf(res.body).sort()).toEqual(["auth.token", "headers.X-Key"]);
      const row = await stored();
      expect(row.url).toBe("https://mcp.example.com/mcp");
      expect(sealer().unseal(row.authSecretSealed as string)).toBe("bearer-secret-1");
    }
    // Header auth the same way.
    const header = await h.request("PATCH", `/v1/tenants/${t.slug}/upstreams/gh`, {
      body: { url: moved, auth: { mode: "header", headerName: "X-Api", value: "********" }, headers: {} },
    });
    expect(header.status).toBe(400);
    expect(fieldsOf(header.body)).toEqual(["auth.value"]);

    const ok = await h.request("PATCH", `/v1/tenants/${t.slug}/upstreams/gh`, {
      body: {
        url: moved,
        auth: { mode: "bearer", token: "bearer-secret-2" },
        headers: { "X-Key": "header-secret-2" },
      },
    });
    expect(ok.status).toBe(200);
    const row = await stored();
    expect(row.url).toBe(moved);
    expect(sealer().unseal(row.authSecretSealed as string)).toBe("bearer-secret-2");
    expect(sealer().unsealJson(row.headersSealed as string)).toEqual({ "X-Key": "header-secret-2" });
    // Same url, other fields: the stored secrets stay, as before.
    const rename = await h.request("PATCH", `/v1/tenants/${t.slug}/upstreams/gh`, {
      body: { description: "d" },
    });
    expect(rename.status).toBe(200);
    expect(sealer().unseal((await stored()).authSecretSealed as string)).toBe("bearer-secret-2");
  });

  async function oauthSetup() {
    const t = await createTenant();
    const client = await h.request("POST", `/v1/tenants/${t.slug}/oauth-clients`, {
      body: {
        name: "as",
        clientId: "gatehouse",
        clientSecret: "client-secret-1",
        authorizationEndpoint: "https://auth.example.com/authorize",
        tokenEndpoint: "https://auth.example.com/token",
      },
    });
    expect(client.status).toBe(201);
    const up = await h.request("POST", `/v1/tenants/${t.slug}/upstreams`, {
      body: {
        name: "crm",
        transport: "streamable-http",
        url: "https://crm.example.com/mcp",
        auth: { mode: "oauth-authorization-code", oauthClient: "as", perUser: true },
      },
    });
    expect(up.status).toBe(201);
    const upstreamId = up.body.id as string;
    for (const subject of ["", "key:alice", "key:bob"]) {
      await h.prisma.upstreamCredential.create({
        data: {
          tenantId: t.id,
          upstreamId,
          subject,
          accessTokenSealed: sealer().seal(`access-${subject}`),
          refreshTokenSealed: sealer().seal(`refresh-${subject}`),
        },
      });
    }
    return { t, upstreamId, clientId: client.body.id as string };
  }

  test("PATCHing an OAuth upstream's url deletes its stored (per-user) credentials", async () => {
    const { t, upstreamId } = await oauthSetup();
    const same = await h.request("PATCH", `/v1/tenants/${t.slug}/upstreams/crm`, {
      body: { description: "x" },
    });
    expect(same.status).toBe(200);
    expect(await h.prisma.upstreamCredential.count({ where: { upstreamId } })).toBe(3);
    const res = await h.request("PATCH", `/v1/tenants/${t.slug}/upstreams/crm`, {
      body: { url: "https://elsewhere.example.net/mcp" },
    });
    expect(res.status).toBe(200);
    expect(await h.prisma.upstreamCredential.count({ where: { upstreamId } })).toBe(0);
  });

  test("PATCHing an OAuth client's token endpoint or issuer needs the secret again and drops the tokens", async () => {
    const { t, upstreamId, clientId } = await oauthSetup();
    const stored = () => h.prisma.oAuthClient.findUniqueOrThrow({ where: { id: clientId } });
    const refused = await h.request("PATCH", `/v1/tenants/${t.slug}/oauth-clients/as`, {
      body: { tokenEndpoint: "https://collector.example.net/token" },
    });
    expect(refused.status).toBe(400);
    expect(fieldsOf(refused.body)).toEqual(["clientSecret"]);
    expect((await stored()).tokenEndpoint).toBe("https://auth.example.com/token");
    expect(await h.prisma.upstreamCredential.count({ where: { upstreamId } })).toBe(3);

    const ok = await h.request("PATCH", `/v1/tenants/${t.slug}/oauth-clients/as`, {
      body: { tokenEndpoint: "https://collector.example.net/token", clientSecret: "client-secret-2" },
    });
    expect(ok.status).toBe(200);
    const row = await stored();
    expect(row.tokenEndpoint).toBe("https://collector.example.net/token");
    expect(sealer().unseal(row.clientSecretSealed as string)).toBe("client-secret-2");
    expect(await h.prisma.upstreamCredential.count({ where: { upstreamId } })).toBe(0);
    // Other fields keep the secret and the tokens.
    const scopes = await h.request("PATCH", `/v1/tenants/${t.slug}/oauth-clients/as`, {
      body: { scopes: ["a"] },
    });
    expect(scopes.status).toBe(200);
    expect(sealer().unseal((await stored()).clientSecretSealed as string)).toBe("client-secret-2");
  });
});

describe("reconnect links connect only the asking principal's own credential, once (#8.7)", () => {
  const sealer = () => createSealer(h.config.SECRETS_KEY);
  const open = (link: string) => {
    const u = new URL(link);
    return h.request("GET", `${u.pathname}${u.search}`, { token: null });
  };

  async function oauthUpstream(perUser: boolean) {
    const t = await createTenant();
    expect(
      (
        await h.request("POST", `/v1/tenants/${t.slug}/oauth-clients`, {
          body: {
            name: "as",
            clientId: "gatehouse",
            authMethod: "none",
            authorizationEndpoint: "https://auth.example.com/authorize",
            tokenEndpoint: "https://auth.example.com/token",
          },
        })
      ).status,
    ).toBe(201);
    const up = await h.request("POST", `/v1/tenants/${t.slug}/upstreams`, {
      body: {
        name: "crm",
        transport: "streamable-http",
        url: "https://crm.example.com/mcp",
        auth: { mode: "oauth-authorization-code", oauthClient: "as", ...(perUser ? { perUser: true } : {}) },
      },
    });
    expect(up.status).toBe(201);
    return {
      t,
      upstream: {
        id: up.body.id as string,
        name: "crm",
        authMode: up.body.auth.mode,
        authConfig: { perUser },
      },
    };
  }

  function tokens() {
    return new UpstreamTokens({
      bus: { publish: async () => {}, subscribe: async () => async () => {}, onReconnect: () => {} } as never,
      sealer: sealer(),
      load: async () => null,
      apiBaseUrl: "http://api.test",
    });
  }

  test("a shared credential gets no link from the gateway; a forged shared ticket connects nothing", async () => {
    const { t, upstream } = await oauthUpstream(false);
    const err = (await tokens()
      .token(t.id, upstream, "key:someone")
      .catch((e: unknown) => e)) as { code: string; message: string; details: Record<string, unknown> };
    expect(err.code).toBe("UPSTREAM_AUTH_REQUIRED");
    expect(err.details.connectUrl).toBeUndefined();
    expect(err.message).toContain("tenant admin");
    // A link for the shared credential (as the old code handed out) is refused when opened.
    const shared = connectLink(sealer(), "http://api.test", {
      tenantId: t.id,
      upstreamId: upstream.id,
      subject: "",
    });
    const res = await open(shared);
    expect(res.status).toBe(400);
    expect(res.body).toContain("tenant admin");
    expect(await h.prisma.oAuthState.count({ where: { upstreamId: upstream.id } })).toBe(0);
  });

  test("returnTo only leads back to the API or the console, never to another site (#8.9)", async () => {
    const { t } = await oauthUpstream(false);
    const connect = (returnTo: string) =>
      h.request("POST", `/v1/tenants/${t.slug}/upstreams/crm/connect`, { body: { returnTo } });
    const offsite = await connect("https://evil.example/phish");
    expect(offsite.status).toBe(400);
    expect(fieldsOf(offsite.body)).toEqual(["returnTo"]);
    // The console's own address (CONSOLE_PUBLIC_URL, http://localhost:3000 by default) is fine.
    const home = await connect("http://localhost:3000/tenants/x/upstreams");
    expect(home.status).toBe(201);
    const stored = await h.prisma.oAuthState.findMany({ where: { tenantId: t.id } });
    expect(stored.map((s) => s.returnTo)).toEqual(["http://localhost:3000/tenants/x/upstreams"]);
  });

  test("a per-user link is bound to its principal and works once", async () => {
    const { t, upstream } = await oauthUpstream(true);
    const err = (await tokens()
      .token(t.id, upstream, "key:alice")
      .catch((e: unknown) => e)) as { code: string; details: { connectUrl: string } };
    expect(err.code).toBe("UPSTREAM_AUTH_REQUIRED");
    const first = await open(err.details.connectUrl);
    expect(first.status).toBe(302);
    expect(String(first.headers.location)).toMatch(/^https:\/\/auth\.example\.com\/authorize\?/);
    const states = await h.prisma.oAuthState.findMany({ where: { upstreamId: upstream.id } });
    expect(states.map((s) => s.subject)).toEqual(["key:alice"]);
    const again = await open(err.details.connectUrl);
    expect(again.status).toBe(400);
    expect(again.body).toContain("already used");
    expect(await h.prisma.oAuthState.count({ where: { upstreamId: upstream.id } })).toBe(1);
  });
});

describe("egress: the API refuses upstream URLs Gatehouse must never connect to (#8.6)", () => {
  test("link-local / cloud metadata addresses are refused at save with a 400 naming `url`", async () => {
    const t = await createTenant();
    for (const url of [
      "http://169.254.169.254/latest/meta-data/",
      "http://[::ffff:169.254.169.254]/mcp",
      "http://[fe80::1]/mcp",
      "http://[fd00:ec2::254]/mcp",
    ]) {
      const res = await h.request("POST", `/v1/tenants/${t.slug}/upstreams`, {
        body: { name: "meta", transport: "streamable-http", url },
      });
      expect(res.status, url).toBe(400);
      expect(fieldsOf(res.body)).toEqual(["url"]);
    }
    expect(await h.prisma.upstream.count({ where: { tenantId: t.id } })).toBe(0);
    // Loopback is allowed by default (a homelab gateway fronts local servers).
    const local = await h.request("POST", `/v1/tenants/${t.slug}/upstreams`, {
      body: { name: "local", transport: "streamable-http", url: "http://127.0.0.1:9/mcp" },
    });
    expect(local.status).toBe(201);
    const moved = await h.request("PATCH", `/v1/tenants/${t.slug}/upstreams/local`, {
      body: { url: "http://169.254.169.254/mcp" },
    });
    expect(moved.status).toBe(400);
    expect(fieldsOf(moved.body)).toEqual(["url"]);
    expect((await h.prisma.upstream.findFirstOrThrow({ where: { tenantId: t.id } })).url).toBe(
      "http://127.0.0.1:9/mcp",
    );
  });
});
