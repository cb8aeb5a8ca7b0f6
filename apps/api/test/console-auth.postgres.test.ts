// Console identity on the real API (Postgres + Redis) with a real OpenID provider (oidc-provider):
// bootstrap sign-in, OIDC code + PKCE sign-in through the provider's login page, invitations that
// bind on first sign-in, one authorization model for sessions and tokens, CSRF, expiry, sign-out.
import { SESSION_COOKIE } from "@gatehouse/shared";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type AuthServer, startAuthServer, WEB_CLIENT } from "../../../test/fixtures/oauth/auth-server.mjs";
import { consent } from "../../../test/fixtures/oauth/consent.mjs";
import { type Harness, startDistributed } from "./harness.js";

const CONSOLE_URL = "http://console.test:3000";

interface Browser {
  cookies: Map<string, string>;
  csrf?: string;
}

// biome-ignore lint/suspicious/noExplicitAny: tests read JSON answers loosely
type Json = any;

describe("console sign-in and sessions", () => {
  let h: Harness;
  let idp: AuthServer;

  beforeAll(async () => {
    idp = await startAuthServer({
      redirectUris: [`${CONSOLE_URL}/auth/callback`],
      claims: (sub) => ({
        email: `${sub}@example.com`,
        email_verified: sub !== "unverified",
        name: `Name ${sub}`,
      }),
    });
    h = await startDistributed({
      CONSOLE_PUBLIC_URL: CONSOLE_URL,
      CONSOLE_OIDC_ISSUER: idp.issuer,
      CONSOLE_OIDC_CLIENT_ID: WEB_CLIENT.id,
      CONSOLE_OIDC_CLIENT_SECRET: WEB_CLIENT.secret,
      CONSOLE_PLATFORM_ADMINS: "root@example.com",
      CONSOLE_BOOTSTRAP_SIGNIN: true,
    });
  });
  afterAll(async () => {
    await h?.close();
    await idp?.close();
  });

  /** A request as a browser would send it through the console: cookies, and the CSRF header on writes. */
  async function send(
    browser: Browser | null,
    method: string,
    url: string,
    body?: unknown,
    options: { csrf?: string | null } = {},
  ): Promise<{ status: number; body: Json; setCookies: string[] }> {
    const headers: Record<string, string> = {};
    if (browser?.cookies.size) headers.cookie = [...browser.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const csrf = options.csrf === undefined ? browser?.csrf : options.csrf;
    if (csrf && method !== "GET") headers["x-csrf-token"] = csrf;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await h.app
      .getHttpAdapter()
      .getInstance()
      .inject({
        method: method as "GET",
        url,
        headers,
        payload: body === undefined ? undefined : JSON.stringify(body),
      });
    const raw = res.headers["set-cookie"];
    const setCookies = raw === undefined ? [] : Array.isArray(raw) ? raw : [String(raw)];
    for (const c of setCookies) {
      const [pair] = c.split(";");
      const i = pair!.indexOf("=");
      const name = pair!.slice(0, i);
      const value = pair!.slice(i + 1);
      if (!browser) continue;
      if (!value || /Max-Age=0/.test(c)) browser.cookies.delete(name);
      else browser.cookies.set(name, value);
    }
    const text = res.body;
    return { status: res.statusCode, body: text ? JSON.parse(text) : undefined, setCookies };
  }

  async function bootstrap(): Promise<Browser> {
    const browser: Browser = { cookies: new Map() };
    const res = await send(browser, "POST", "/v1/auth/bootstrap", { token: h.config.ADMIN_TOKEN });
    expect(res.status).toBe(200);
    browser.csrf = res.body.csrfToken;
    return browser;
  }

  async function oidcSignIn(login: string, returnTo?: string): Promise<{ browser: Browser; body: Json }> {
    const browser: Browser = { cookies: new Map() };
    const start = await send(browser, "POST", "/v1/auth/oidc/start", returnTo ? { returnTo } : {});
    expect(start.status).toBe(200);
    const authUrl = new URL(start.body.authorizationUrl);
    expect(authUrl.searchParams.get("code_challenge_method")).toBe("S256");
    expect(authUrl.searchParams.get("nonce")).toBeTruthy();
    expect(authUrl.searchParams.get("redirect_uri")).toBe(`${CONSOLE_URL}/auth/callback`);
    const callback = new URL(await consent(authUrl.href, { login }));
    expect(callback.origin + callback.pathname).toBe(`${CONSOLE_URL}/auth/callback`);
    const done = await send(browser, "POST", "/v1/auth/oidc/callback", { query: callback.search });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    browser.csrf = done.body.csrfToken;
    return { browser, body: done.body };
  }

  async function createTenant(slug: string): Promise<Json> {
    const res = await h.request("POST", "/v1/tenants", { body: { slug, name: slug } });
    expect(res.status).toBe(201);
    return res.body;
  }

  test("providers says which sign-ins are on", async () => {
    const res = await send(null, "GET", "/v1/auth/providers");
    expect(res.body).toEqual({ bootstrap: true, oidc: { enabled: true, issuer: idp.issuer } });
  });

  test("bootstrap sign-in: the admin token gives a platform-admin session in an HttpOnly SameSite cookie", async () => {
    const wrong = await send(null, "POST", "/v1/auth/bootstrap", { token: "not-the-token-at-all" });
    expect(wrong.status).toBe(401);
    expect(wrong.setCookies).toEqual([]);

    const browser: Browser = { cookies: new Map() };
    const res = await send(browser, "POST", "/v1/auth/bootstrap", { token: h.config.ADMIN_TOKEN });
    expect(res.status).toBe(200);
    const cookie = res.setCookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`))!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).not.toMatch(/Secure/); // the console here is plain http
    expect(JSON.stringify(res.body)).not.toContain(browser.cookies.get(SESSION_COOKIE));
    // Only the hash is stored.
    const token = browser.cookies.get(SESSION_COOKIE)!;
    expect(await h.prisma.consoleSession.count({ where: { hash: token } })).toBe(0);

    browser.csrf = res.body.csrfToken;
    const me = await send(browser, "GET", "/v1/auth/me");
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({
      kind: "session",
      platformAdmin: true,
      session: { csrfToken: res.body.csrfToken },
    });
  });

  test("a session's writes need its CSRF token; reads do not", async () => {
    const browser = await bootstrap();
    const slug = `csrf-${Date.now().toString(36)}`;
    const missing = await send(browser, "POST", "/v1/tenants", { slug, name: "x" }, { csrf: null });
    expect(missing.status).toBe(403);
    expect(missing.body.error.message).toMatch(/CSRF/);
    const other = await bootstrap();
    const foreign = await send(browser, "POST", "/v1/tenants", { slug, name: "x" }, { csrf: other.csrf! });
    expect(foreign.status).toBe(403);
    expect((await send(browser, "GET", "/v1/tenants")).status).toBe(200);
    const ok = await send(browser, "POST", "/v1/tenants", { slug, name: "x" });
    expect(ok.status).toBe(201);
  });

  test("OIDC sign-in binds an invitation; a viewer reads but cannot write, and sees no other tenant", async () => {
    const a = await createTenant(`acme-${Date.now().toString(36)}`);
    const b = await createTenant(`beta-${Date.now().toString(36)}`);
    const invite = await h.request("POST", `/v1/tenants/${a.slug}/members`, {
      body: { email: "Vera@Example.com", role: "viewer" },
    });
    expect(invite.status).toBe(201);
    expect(invite.body).toMatchObject({ email: "vera@example.com", role: "viewer", status: "invited" });

    const { browser, body } = await oidcSignIn("vera", "/tenants");
    expect(body).toMatchObject({
      platformAdmin: false,
      returnTo: "/tenants",
      user: { email: "vera@example.com" },
    });
    const me = await send(browser, "GET", "/v1/auth/me");
    expect(me.body.memberships).toEqual([
      { tenant: { id: a.id, slug: a.slug, name: a.name }, role: "viewer" },
    ]);
    const members = await h.request("GET", `/v1/tenants/${a.slug}/members`);
    expect(members.body.items[0]).toMatchObject({ email: "vera@example.com", status: "active" });

    expect((await send(browser, "GET", `/v1/tenants/${a.slug}/upstreams`)).status).toBe(200);
    const write = await send(browser, "POST", `/v1/tenants/${a.slug}/api-keys`, { name: "forged" });
    expect(write.status).toBe(403);
    expect(write.body.error.message).toMatch(/viewer/);
    expect((await send(browser, "PATCH", `/v1/tenants/${a.slug}`, { name: "renamed" })).status).toBe(403);
    expect(
      (await send(browser, "POST", `/v1/tenants/${a.slug}/members`, { email: "x@example.com" })).status,
    ).toBe(403);
    // Tenant B does not exist for this member, by slug or by id.
    expect((await send(browser, "GET", `/v1/tenants/${b.slug}`)).status).toBe(404);
    expect((await send(browser, "GET", `/v1/tenants/${b.id}/upstreams`)).status).toBe(404);
    const list = await send(browser, "GET", "/v1/tenants");
    expect(list.body.items.map((t: Json) => t.slug)).toEqual([a.slug]);
    expect((await send(browser, "POST", "/v1/tenants", { slug: "nope-nope", name: "n" })).status).toBe(403);

    // Promoted to admin: takes effect on the next request, same session.
    const id = members.body.items[0].id;
    expect(
      (await h.request("PATCH", `/v1/tenants/${a.slug}/members/${id}`, { body: { role: "admin" } })).status,
    ).toBe(200);
    const key = await send(browser, "POST", `/v1/tenants/${a.slug}/api-keys`, { name: "now-allowed" });
    expect(key.status).toBe(201);
    // An admin cannot make anyone owner.
    const owner = await send(browser, "POST", `/v1/tenants/${a.slug}/members`, {
      email: "o@example.com",
      role: "owner",
    });
    expect(owner.status).toBe(403);

    // Removing the member ends their sessions at once.
    expect((await h.request("DELETE", `/v1/tenants/${a.slug}/members/${id}`)).status).toBe(204);
    expect((await send(browser, "GET", "/v1/auth/me")).status).toBe(401);
  });

  test("an unverified email binds no invitation", async () => {
    const t = await createTenant(`unv-${Date.now().toString(36)}`);
    await h.request("POST", `/v1/tenants/${t.slug}/members`, { body: { email: "unverified@example.com" } });
    const { browser } = await oidcSignIn("unverified");
    const me = await send(browser, "GET", "/v1/auth/me");
    expect(me.body.memberships).toEqual([]);
    expect((await send(browser, "GET", `/v1/tenants/${t.slug}`)).status).toBe(404);
  });

  test("platform admins come from CONSOLE_PLATFORM_ADMINS", async () => {
    const { browser, body } = await oidcSignIn("root");
    expect(body.platformAdmin).toBe(true);
    expect((await send(browser, "GET", "/v1/tenants")).status).toBe(200);
  });

  test("a forged or replayed OIDC callback is refused", async () => {
    const browser: Browser = { cookies: new Map() };
    const start = await send(browser, "POST", "/v1/auth/oidc/start", {});
    const callback = new URL(await consent(start.body.authorizationUrl, { login: "mallory" }));
    // Another browser (no flow cookie) cannot finish it.
    const stranger = await send({ cookies: new Map() }, "POST", "/v1/auth/oidc/callback", {
      query: callback.search,
    });
    expect(stranger.status).toBe(401);
    // A tampered state is refused.
    const tampered = new URLSearchParams(callback.search);
    tampered.set("state", "forged");
    const bad = await send(browser, "POST", "/v1/auth/oidc/callback", { query: `?${tampered}` });
    expect(bad.status).toBe(401);
    // returnTo must stay on the console.
    const offsite = await send(browser, "POST", "/v1/auth/oidc/start", { returnTo: "//evil.example/x" });
    expect(offsite.status).toBe(400);
  });

  test("sign out ends this session; sign out everywhere ends all of them", async () => {
    const one = await bootstrap();
    const two = await bootstrap();
    const three = await bootstrap();
    const out = await send(one, "POST", "/v1/auth/sign-out");
    expect(out.status).toBe(204);
    expect(out.setCookies[0]).toMatch(/Max-Age=0/);
    // Replaying the old cookie does not work.
    const replay: Browser = { cookies: new Map([[SESSION_COOKIE, "x"]]) };
    expect((await send(replay, "GET", "/v1/auth/me")).status).toBe(401);
    expect((await send(two, "GET", "/v1/auth/me")).status).toBe(200);
    expect((await send(two, "POST", "/v1/auth/sign-out-everywhere")).status).toBe(204);
    expect((await send(three, "GET", "/v1/auth/me")).status).toBe(401);
  });

  test("idle and absolute expiry end a session", async () => {
    const idle = await bootstrap();
    const absolute = await bootstrap();
    const hashOf = async (b: Browser) => {
      const { hashToken } = await import("@gatehouse/shared/node");
      return hashToken(b.cookies.get(SESSION_COOKIE)!);
    };
    await h.prisma.consoleSession.update({
      where: { hash: await hashOf(idle) },
      data: { lastSeenAt: new Date(Date.now() - 61 * 60_000) },
    });
    await h.prisma.consoleSession.update({
      where: { hash: await hashOf(absolute) },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    const res = await send(idle, "GET", "/v1/auth/me");
    expect(res.status).toBe(401);
    expect(res.body.error.message).toMatch(/sign in again/);
    expect((await send(absolute, "GET", "/v1/auth/me")).status).toBe(401);
  });

  test("a viewer token and a viewer session are refused the same write", async () => {
    const t = await createTenant(`same-${Date.now().toString(36)}`);
    const token = await h.request("POST", `/v1/tenants/${t.slug}/tokens`, {
      body: { name: "v", role: "viewer" },
    });
    const byToken = await h.request("PUT", `/v1/tenants/${t.slug}/policy`, {
      token: token.body.token,
      body: { defaultEffect: "allow", rules: [] },
    });
    expect(byToken.status).toBe(403);
    await h.request("POST", `/v1/tenants/${t.slug}/members`, { body: { email: "val@example.com" } });
    const { browser } = await oidcSignIn("val");
    const bySession = await send(browser, "PUT", `/v1/tenants/${t.slug}/policy`, {
      defaultEffect: "allow",
      rules: [],
    });
    expect(bySession.status).toBe(403);
  });
});
