// The console in a real browser (Debian's chromium driven by playwright-core) against the real
// stack: `npm start`'s embedded entry on Postgres (API, gateway, in-process jobs, and the Next.js
// console beside them), a real upstream MCP server and a real OpenID provider (oidc-provider) as the
// platform IdP. Pages are driven by role, label and visible text; axe-core checks every page (no
// serious or critical violation); each page is photographed in light and dark into a temporary
// folder, or with UPDATE_SCREENSHOTS=1 into the committed apps/web/screenshots/.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AxeBuilder } from "@axe-core/playwright";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type AuthServer, startAuthServer, WEB_CLIENT } from "../fixtures/oauth/auth-server.mjs";
import { printLogsOnFailure } from "../support/hooks.js";
import { type Fixture, freePort, ManagedProcess, repoRoot, startFixture } from "../support/processes.js";
import { createDatabase, type TestDatabase } from "../support/stack.js";

printLogsOnFailure();

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--no-first-run",
];
// `npm test` leaves the checkout as it found it: the committed screenshots change only on request.
const SHOTS =
  process.env.UPDATE_SCREENSHOTS === "1"
    ? join(repoRoot, "apps/web/screenshots")
    : join(tmpdir(), "gatehouse-console-screenshots");

let upstream: Fixture;
let idp: AuthServer;
let db: TestDatabase;
let dataDir: string;
let stack: ManagedProcess;
let browser: Browser;
let admin: BrowserContext;
let page: Page;
let consoleUrl: string;
let apiUrl: string;
let gatewayUrl: string;
const adminToken = `mgt_${randomBytes(24).toString("hex")}`;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`No Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  }
  const [webPort, apiPort, gwPort] = [await freePort(), await freePort(), await freePort()];
  consoleUrl = `http://127.0.0.1:${webPort}`;
  apiUrl = `http://127.0.0.1:${apiPort}`;
  gatewayUrl = `http://127.0.0.1:${gwPort}`;
  [upstream, idp, db, dataDir] = await Promise.all([
    startFixture("tools-server.mjs", ["--name", "alpha"]),
    startAuthServer({
      redirectUris: [`${consoleUrl}/auth/callback`],
      claims: (sub) => ({ email: `${sub}@example.com`, email_verified: true, name: sub }),
    }),
    createDatabase(),
    mkdtemp(join(tmpdir(), "gatehouse-console-")),
  ]);
  stack = new ManagedProcess("embedded", process.execPath, [join(repoRoot, "apps/api/dist/embedded.js")], {
    env: {
      DATABASE_URL: db.url,
      REDIS_URL: undefined,
      DATA_DIR: dataDir,
      HOST: "127.0.0.1",
      API_PORT: String(apiPort),
      GATEWAY_PORT: String(gwPort),
      WEB_PORT: String(webPort),
      PUBLIC_GATEWAY_URL: gatewayUrl,
      ADMIN_TOKEN: adminToken,
      CONSOLE_OIDC_ISSUER: idp.issuer,
      CONSOLE_OIDC_CLIENT_ID: WEB_CLIENT.id,
      CONSOLE_OIDC_CLIENT_SECRET: WEB_CLIENT.secret,
      LOG_LEVEL: "warn",
    },
  });
  await stack.waitForLine(/Console\s+http/, 120_000);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  admin = await browser.newContext({ baseURL: consoleUrl });
  admin.setDefaultTimeout(15_000);
  page = await admin.newPage();
  await mkdir(SHOTS, { recursive: true });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await stack?.kill("SIGTERM", 10_000);
  await Promise.all([
    idp?.close(),
    db?.drop(),
    dataDir ? rm(dataDir, { recursive: true, force: true }) : null,
  ]);
});

/** axe-core on the page as it is now (no serious or critical violation), then a light and a dark photo. */
async function check(p: Page, name: string): Promise<void> {
  for (const scheme of ["light", "dark"] as const) {
    await p.emulateMedia({ colorScheme: scheme });
    const { violations } = await new AxeBuilder({ page: p }).analyze();
    const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    expect(
      bad.map((v) => `${v.id} (${scheme}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`),
      `${name}: accessibility`,
    ).toEqual([]);
    await p.screenshot({ path: join(SHOTS, `${name}-${scheme}.png`), fullPage: true });
  }
  await p.emulateMedia({ colorScheme: "light" });
}

describe("console", () => {
  test("sign in with the admin token printed by npm start", async () => {
    await page.goto("/");
    await expect.poll(() => page.url()).toContain("/sign-in");
    await check(page, "sign-in");
    await page.getByLabel("Admin token", { exact: true }).fill("not-the-token");
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await expect
      .poll(() => page.getByRole("main").getByRole("alert").textContent())
      .toContain("not the admin token");
    await page.getByLabel("Admin token", { exact: true }).fill(adminToken);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByRole("heading", { name: "Tenants" }).waitFor();
    const cookie = (await admin.cookies()).find((c) => c.name === "gatehouse_session");
    expect(cookie?.httpOnly).toBe(true);
    expect(cookie?.sameSite).toBe("Lax");
  });

  test("create tenants, search them", async () => {
    for (const [name, slug] of [
      ["Acme Corp", "acme"],
      ["Beta Labs", "beta"],
    ]) {
      await page.getByLabel("Name", { exact: true }).fill(name!);
      await page.getByLabel("Slug", { exact: true }).fill(slug!);
      await page.getByRole("button", { name: "Create tenant" }).click();
      await page
        .getByRole("status")
        .filter({ hasText: `Tenant ${slug} created` })
        .waitFor();
    }
    await page.getByRole("link", { name: "Beta Labs" }).waitFor();
    await page.getByLabel("Search", { exact: true }).fill("acme");
    await page.getByRole("button", { name: "Search" }).click();
    await expect.poll(() => page.getByRole("link", { name: "Beta Labs" }).count()).toBe(0);
    await page.getByRole("link", { name: "Acme Corp" }).waitFor();
    // A taken slug: the API's own message.
    await page.getByLabel("Name", { exact: true }).fill("Again");
    await page.getByLabel("Slug", { exact: true }).fill("acme");
    await page.getByRole("button", { name: "Create tenant" }).click();
    await page.getByRole("main").getByRole("alert").waitFor();
    await check(page, "tenants");
  });

  test("add an upstream: live validation, test connection, then its tool catalog", async () => {
    await page.getByRole("link", { name: "Acme Corp" }).click();
    await page.getByRole("heading", { name: "Upstreams" }).waitFor();
    await page.getByLabel("Name", { exact: true }).fill("Not Valid");
    await page.getByText("Must be 1-63 lowercase letters").waitFor();
    await page.getByLabel("Name", { exact: true }).fill("alpha");
    await expect.poll(() => page.getByText("Must be 1-63 lowercase letters").count()).toBe(0);
    await page.getByLabel("URL", { exact: true }).fill(upstream.url);
    await page.getByRole("button", { name: "Test connection" }).click();
    const result = page.getByRole("status").filter({ hasText: "Connected in" });
    await result.waitFor();
    expect(await result.textContent()).toContain("echo");
    await check(page, "upstreams-add");
    await page.getByRole("button", { name: "Add upstream" }).click();
    await page.getByRole("heading", { name: "alpha" }).waitFor();
    // Discovery runs in the background after the change; the catalog shows once it has.
    await expect
      .poll(
        async () => {
          await page.reload();
          return page.getByRole("heading", { name: /^Tools \(\d+\)$/ }).textContent();
        },
        { timeout: 30_000, interval: 500 },
      )
      .not.toBe("Tools (0)");
    await page.getByRole("searchbox", { name: "Search tools" }).fill("echo");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByText("alpha_echo").click();
    await page.getByRole("heading", { name: "Input schema" }).waitFor();
    await check(page, "upstream");
    await page.getByRole("link", { name: "Upstreams" }).first().click();
    await page.getByRole("link", { name: "alpha" }).waitFor();
    await check(page, "upstreams");
  });

  let key = "";
  test("create an API key: shown once with a copy button", async () => {
    await page.getByRole("link", { name: "API keys" }).click();
    await page.getByRole("heading", { level: 1, name: "API keys" }).waitFor();
    await page.getByLabel("Name", { exact: true }).fill("laptop");
    await page.getByLabel("Agent", { exact: true }).fill("claude-code");
    await page.getByLabel("Roles", { exact: true }).fill("research");
    await page.getByRole("button", { name: "Create key" }).click();
    const secret = page.getByTestId("secret");
    await secret.waitFor();
    key = (await secret.textContent()) ?? "";
    expect(key).toMatch(/^mgw_/);
    await page.getByRole("button", { name: "Copy" }).waitFor();
    await check(page, "keys");
    await page.reload();
    expect(await page.getByText(key).count()).toBe(0);
    await page.getByRole("cell", { name: "laptop", exact: true }).waitFor();
  });

  test("policy: the API's error names the bad rule; a saved policy simulates and admits the key", async () => {
    await page.getByRole("link", { name: "Policy" }).click();
    await page.getByRole("heading", { level: 1, name: "Policy" }).waitFor();
    const editor = page.getByLabel("Policy JSON", { exact: true });
    await editor.fill(
      JSON.stringify({
        defaultEffect: "deny",
        rules: [
          { id: "ok", effect: "allow", tools: ["*"] },
          { id: "broken", effect: "allow", when: "this is ( not CEL" },
        ],
      }),
    );
    await page.getByRole("button", { name: "Save policy" }).click();
    await expect
      .poll(() => page.getByRole("main").getByRole("alert").textContent())
      .toContain("rules[1].when");
    await editor.fill(
      JSON.stringify({
        defaultEffect: "deny",
        rules: [
          { id: "research-alpha", effect: "allow", principals: ["role:research"], upstreams: ["alpha"] },
        ],
      }),
    );
    await page.getByRole("button", { name: "Save policy" }).click();
    await page.getByRole("status").filter({ hasText: "Saved as version" }).waitFor();
    await page.getByLabel("Roles", { exact: true }).fill("research");
    await page.getByLabel("Upstream", { exact: true }).fill("alpha");
    await page.getByLabel("Tool", { exact: true }).fill("echo");
    await page.getByRole("button", { name: "Simulate" }).click();
    const decision = page.getByRole("status", { name: "Decision" });
    await decision.waitFor();
    expect(await decision.textContent()).toContain("allow");
    expect(await decision.textContent()).toContain("research-alpha");
    await check(page, "policy");

    // The key works on the gateway URL the console hands out.
    const res = await fetch(`${gatewayUrl}/t/acme/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${key}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } },
      }),
    });
    expect(res.status).toBe(200);
  });

  test("connect an agent: setups for the tenant URL and the pasted key", async () => {
    await page.getByRole("link", { name: "Connect an agent" }).click();
    await page.getByRole("heading", { level: 1, name: "Connect an agent" }).waitFor();
    await page.getByLabel("API key", { exact: true }).fill(key);
    const claudeCode = page.getByRole("region", { name: "Claude Code" });
    await expect
      .poll(() => claudeCode.textContent())
      .toContain(`claude mcp add --transport http acme ${gatewayUrl}/t/acme/mcp`);
    expect(await claudeCode.textContent()).toContain(`Authorization: Bearer ${key}`);
    for (const name of ["Claude Desktop", "Cursor", "VS Code", "Project .mcp.json", "MCP Inspector"]) {
      await page.getByRole("region", { name }).waitFor();
    }
    await page.getByLabel("API key", { exact: true }).fill("");
    await check(page, "connect");
  });

  test("admin tokens: created once, revoked", async () => {
    await page.getByRole("link", { name: "Admin tokens" }).click();
    await page.getByRole("heading", { level: 1, name: "Admin tokens" }).waitFor();
    await page.getByLabel("Name", { exact: true }).fill("ci");
    await page.getByRole("button", { name: "Create token" }).click();
    await expect.poll(() => page.getByTestId("secret").textContent()).toMatch(/^mgt_/);
    await check(page, "tokens");
    await page.getByRole("button", { name: "Revoke ci" }).click();
    await expect.poll(() => page.getByRole("button", { name: "Revoke ci" }).count()).toBe(0);
  });

  let viewer: BrowserContext;
  test("a viewer invited by email signs in at the IdP and sees no write controls; the API refuses a forged write; other tenants do not exist for them", async () => {
    await page.getByRole("link", { name: "Members" }).click();
    await page.getByRole("heading", { level: 1, name: "Members" }).waitFor();
    await page.getByLabel("Email", { exact: true }).fill("vera@example.com");
    await page.getByRole("button", { name: "Invite" }).click();
    await page.getByRole("cell", { name: "vera@example.com", exact: true }).waitFor();
    await check(page, "members");

    viewer = await browser.newContext({ baseURL: consoleUrl });
    viewer.setDefaultTimeout(15_000);
    const v = await viewer.newPage();
    await v.goto("/sign-in");
    await v.getByRole("button", { name: "Sign in with your identity provider" }).click();
    // oidc-provider's own login and consent pages.
    await v.locator('input[name="login"]').fill("vera");
    await v.locator('input[name="password"]').fill("any");
    await v.locator('button[type="submit"]').click();
    await v.getByRole("button", { name: /continue/i }).click();
    await v
      .getByRole("heading", { name: "Tenants" })
      .waitFor()
      .catch(async (err: Error) => {
        throw new Error(
          `${err.message}\nat ${v.url()}: ${((await v.locator("body").textContent()) ?? "").slice(0, 800)}`,
        );
      });
    expect(await v.getByRole("link", { name: "Acme Corp" }).count()).toBe(1);
    expect(await v.getByRole("link", { name: "Beta Labs" }).count()).toBe(0);
    expect(await v.getByRole("heading", { name: "Create a tenant" }).count()).toBe(0);

    await v.getByRole("link", { name: "Acme Corp" }).click();
    await v.getByRole("heading", { name: "Upstreams" }).waitFor();
    expect(await v.getByRole("heading", { name: "Add an upstream" }).count()).toBe(0);
    await check(v, "viewer-upstreams");
    for (const [link, control] of [
      ["API keys", "Create key"],
      ["Members", "Invite"],
      ["Admin tokens", "Create token"],
      ["Policy", "Save policy"],
    ] as const) {
      await v.getByRole("link", { name: link }).click();
      await v.getByRole("heading", { level: 1, name: link }).waitFor();
      expect(await v.getByRole("button", { name: control }).count(), `${link}: ${control}`).toBe(0);
      expect(await v.getByRole("button", { name: /^Revoke|^Remove/ }).count()).toBe(0);
    }
    // Refused by the API anyway: a write with this session's own cookie and CSRF token.
    const session = (await viewer.cookies()).find((c) => c.name === "gatehouse_session")!;
    const cookie = `gatehouse_session=${session.value}`;
    const me = (await (await fetch(`${apiUrl}/v1/auth/me`, { headers: { cookie } })).json()) as {
      session: { csrfToken: string };
    };
    const forged = await fetch(`${apiUrl}/v1/tenants/acme/api-keys`, {
      method: "POST",
      headers: { cookie, "x-csrf-token": me.session.csrfToken, "content-type": "application/json" },
      body: JSON.stringify({ name: "forged" }),
    });
    expect(forged.status).toBe(403);
    // Tenant B by URL: nothing.
    await v.goto("/t/beta/upstreams");
    await v.getByRole("heading", { name: "Not found" }).waitFor();
    await check(v, "not-found");
  });

  test("settings: rename, and delete with a confirmation naming what goes", async () => {
    await page.goto("/t/beta/settings");
    await page.getByLabel("Tenant name", { exact: true }).fill("Beta Laboratories");
    await page.getByRole("button", { name: "Rename" }).click();
    await page.getByRole("status").filter({ hasText: "Renamed to Beta Laboratories" }).waitFor();
    await page.getByText("Delete this tenant").click();
    await page.getByText("0 upstreams and their stored credentials").waitFor();
    await check(page, "settings");
    await page.getByLabel("Type beta to confirm", { exact: true }).fill("beta");
    await page.getByRole("button", { name: "Delete tenant" }).click();
    await page.getByRole("heading", { name: "Tenants" }).waitFor();
    expect(await page.getByRole("link", { name: /Beta/ }).count()).toBe(0);
  });

  test("removing a member ends their session; signing out ends one's own", async () => {
    await page.goto("/t/acme/members");
    await page.getByRole("button", { name: "Remove vera@example.com" }).click();
    await expect
      .poll(() => page.getByRole("cell", { name: "vera@example.com", exact: true }).count())
      .toBe(0);
    const v = await viewer.newPage();
    await v.goto("/tenants");
    await expect.poll(() => v.url()).toContain("/sign-in");

    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.getByRole("heading", { name: "Sign in to Gatehouse" }).waitFor();
    await page.goto("/tenants");
    await expect.poll(() => page.url()).toContain("/sign-in");
  });
});
