// Tenant isolation matrix (issue 8): every credential of tenant A (its owner, admin and viewer
// admin tokens, an owner's console session, an API key, a JWT from a real oidc-provider that
// tenant B trusts too) and no credential at all, against every REST route and every gateway path of tenant B, by slug and by
// id. Nothing of B is read, written or listed, and no answer tells whether an object of B exists:
// the answer for B's object is byte for byte the one for an object that does not exist.
//
// The REST part is generated from the API's own route table (Fastify's, at runtime): a new route
// is covered without anyone adding it here, and a route outside /v1/tenants/:tenant that nobody
// classified fails the first test. A platform-token control on a third tenant C sends the same
// requests and must be served, so a refusal below is the access check, not a malformed request.
import { randomBytes, randomUUID } from "node:crypto";
import { createDb, type Db } from "@gatehouse/db";
import { CSRF_HEADER, ErrorCode, SESSION_COOKIE } from "@gatehouse/shared";
import { hashToken } from "@gatehouse/shared/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CC_CLIENT, RESOURCE_SCOPE, startAuthServer } from "../fixtures/oauth/auth-server.mjs";
import { ALLOW_ALL } from "../support/admin-client.js";
import { rawInitialize, rawMcp } from "../support/agent.js";
import { printLogsOnFailure } from "../support/hooks.js";
import { type Fixture, startFixture } from "../support/processes.js";
import { type ApiRoute, apiRouteTable } from "../support/routes.js";
import { Stack } from "../support/stack.js";

printLogsOnFailure();

type AuthServer = Awaited<ReturnType<typeof startAuthServer>>;
type Json = Record<string, unknown>;
const ROLES = ["owner", "admin", "viewer"] as const;
type Role = (typeof ROLES)[number];

/** One tenant as provisioned here; every object name carries the tenant's prefix, so no two tenants share one. */
interface Provisioned {
  slug: string;
  id: string;
  gatewayUrl: string;
  /** Objects by the route parameter that names them. */
  upstream: string;
  ccUpstream: string;
  acUpstream: string;
  keyId: string;
  key: string;
  keyPrefix: string;
  idpId: string;
  oauthClientId: string;
  credentialId: string;
  memberId: string;
  tokens: Record<Role, { id: string; token: string }>;
}

/** What a request names: a tenant ref and, for each object parameter, a value. */
interface Objects {
  upstream: string;
  ccUpstream: string;
  acUpstream: string;
  keyId: string;
  idpId: string;
  oauthClientId: string;
  credentialId: string;
  tokenId: string;
  memberId: string;
}

let stack: Stack;
let tools: Fixture;
let as: AuthServer;
let db: Db;
let routes: ApiRoute[];
let A: Provisioned;
let B: Provisioned;
let C: Provisioned;
let jwtA = "";
let bSession = "";
let bSnapshot = "";
const run = randomBytes(3).toString("hex");
const ghostTenant = { slug: `ghost-${run}`, id: randomUUID() };
const ghost: Objects = {
  upstream: `ghost-${run}-tools`,
  ccUpstream: `ghost-${run}-cc`,
  acUpstream: `ghost-${run}-ac`,
  keyId: randomUUID(),
  idpId: randomUUID(),
  oauthClientId: randomUUID(),
  credentialId: randomUUID(),
  tokenId: randomUUID(),
  memberId: randomUUID(),
};
let seq = 0;
const uniq = (base: string) => `${base}-${run}-${++seq}`;

const objectsOf = (t: Provisioned): Objects => ({
  upstream: t.upstream,
  ccUpstream: t.ccUpstream,
  acUpstream: t.acUpstream,
  keyId: t.keyId,
  idpId: t.idpId,
  oauthClientId: t.oauthClientId,
  credentialId: t.credentialId,
  tokenId: t.tokens.viewer.id,
  memberId: t.memberId,
});

// ---------------------------------------------------------------------------------------------
// Route classification. Everything under /v1/tenants/:tenant is tenant-scoped by construction;
// any other route must be listed here, or the first test fails naming it.
// ---------------------------------------------------------------------------------------------
type RouteClass = "public" | "platform" | "self" | "tenant";
const TENANT_PREFIX = "/v1/tenants/:tenant";
const CLASSIFIED: Record<string, Exclude<RouteClass, "tenant">> = {
  "GET /healthz": "public",
  "GET /readyz": "public",
  "GET /metrics": "public",
  // Browser-facing OAuth: a sealed ticket or the OAuth state authorizes, never a token.
  "GET /v1/oauth/connect": "public",
  "GET /v1/oauth/callback": "public",
  "GET /v1/oauth/client-metadata.json": "public",
  // Console sign-in: the admin token, or the OIDC state cookie, in the request authorizes.
  "GET /v1/auth/providers": "public",
  "POST /v1/auth/bootstrap": "public",
  "POST /v1/auth/oidc/start": "public",
  "POST /v1/auth/oidc/callback": "public",
  // About the caller itself.
  "GET /v1/auth/me": "self",
  "POST /v1/auth/sign-out": "self",
  "POST /v1/auth/sign-out-everywhere": "self",
  "POST /v1/tenants": "platform",
  "GET /v1/tenants": "platform",
  "GET /v1/gateways": "platform",
};

function classify(r: ApiRoute): RouteClass | undefined {
  if (r.path === TENANT_PREFIX || r.path.startsWith(`${TENANT_PREFIX}/`)) return "tenant";
  // The OpenAPI document and its UI (static, the same for everyone).
  if (r.method === "GET" && /^\/docs(?:$|[/-])/.test(r.path)) return "public";
  return CLASSIFIED[`${r.method} ${r.path}`];
}

const key = (r: ApiRoute) => `${r.method} ${r.path}`;
const params = (path: string) => [...path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);

/** The object a route parameter names: the collection is the path segment before it. */
function objectParam(path: string, param: string, o: Objects): string | undefined {
  const segments = path.split("/");
  const collection = segments[segments.indexOf(`:${param}`) - 1];
  switch (`${collection}/:${param}`) {
    case "upstreams/:name":
      if (path.includes("/connect")) return o.acUpstream;
      if (path.includes("/credentials")) return o.ccUpstream;
      return o.upstream;
    case "api-keys/:id":
      return o.keyId;
    case "identity-providers/:id":
      return o.idpId;
    case "tokens/:id":
      return o.tokenId;
    case "oauth-clients/:id":
      return o.oauthClientId;
    case "credentials/:credentialId":
      return o.credentialId;
    case "members/:id":
      return o.memberId;
    default:
      return undefined;
  }
}

/** Bodies that the platform token gets served with on tenant C (the control test checks they are valid). */
const BODIES: Record<string, (o: Objects) => unknown> = {
  "POST /v1/tenants": () => ({ slug: uniq("made"), name: "Made here" }),
  "PATCH /v1/tenants/:tenant": () => ({ name: "Renamed" }),
  "POST /v1/tenants/:tenant/upstreams": () => ({
    name: uniq("up"),
    transport: "streamable-http",
    url: tools.url,
  }),
  "PATCH /v1/tenants/:tenant/upstreams/:name": () => ({ description: "changed" }),
  "POST /v1/tenants/:tenant/upstream-test": () => ({
    name: uniq("try"),
    transport: "streamable-http",
    url: tools.url,
  }),
  "POST /v1/tenants/:tenant/upstreams/:name/connect": () => ({}),
  "POST /v1/tenants/:tenant/upstreams/:name/credentials/refresh": () => ({}),
  "POST /v1/tenants/:tenant/api-keys": () => ({ name: uniq("key") }),
  "POST /v1/tenants/:tenant/identity-providers": () => ({ name: uniq("idp"), issuer: as.issuer }),
  "PATCH /v1/tenants/:tenant/identity-providers/:id": () => ({ name: uniq("idp") }),
  "PUT /v1/tenants/:tenant/policy": () => ({ defaultEffect: "allow", rules: [] }),
  "POST /v1/tenants/:tenant/policy/simulate": (o) => ({ principal: {}, upstream: o.upstream, tool: "echo" }),
  "POST /v1/tenants/:tenant/tokens": () => ({ name: uniq("tok"), role: "owner" }),
  "POST /v1/tenants/:tenant/oauth-clients": () => ({
    name: uniq("oc"),
    issuer: as.issuer,
    clientId: CC_CLIENT.id,
    clientSecret: CC_CLIENT.secret,
  }),
  "PATCH /v1/tenants/:tenant/oauth-clients/:id": () => ({ scopes: [RESOURCE_SCOPE, "extra"] }),
  "POST /v1/tenants/:tenant/members": () => ({ email: `${uniq("person")}@example.com`, role: "admin" }),
  "PATCH /v1/tenants/:tenant/members/:id": () => ({ role: "admin" }),
};

/** A concrete request for `route`: `:tenant` = tenantRef, object parameters from `objects` (the last from `last`). */
function fill(route: ApiRoute, tenantRef: string, objects: Objects, last: Objects = objects): string {
  const names = params(route.path).filter((p) => p !== "tenant");
  let path = route.path.replace(":tenant", encodeURIComponent(tenantRef));
  names.forEach((p, i) => {
    const value = objectParam(route.path, p, i === names.length - 1 ? last : objects);
    if (value === undefined)
      throw new Error(`no fixture for :${p} in ${key(route)}: add it to objectParam()`);
    path = path.replace(`:${p}`, encodeURIComponent(value));
  });
  return path;
}

// ---------------------------------------------------------------------------------------------
// HTTP and comparison helpers
// ---------------------------------------------------------------------------------------------
interface Answer {
  status: number;
  text: string;
  headers: Headers;
}

type Headers_ = Record<string, string>;

async function api(
  method: string,
  path: string,
  auth: Headers_ | undefined,
  body?: unknown,
): Promise<Answer> {
  const headers: Record<string, string> = { ...auth };
  const sendsBody = method !== "GET" && method !== "DELETE" && method !== "HEAD";
  if (sendsBody) headers["content-type"] = "application/json";
  const res = await fetch(`${stack.api.url}${path}`, {
    method,
    headers,
    body: sendsBody ? JSON.stringify(body ?? {}) : undefined,
    redirect: "manual",
    signal: AbortSignal.timeout(20_000),
  });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

/** Runs `fn` over `items`, `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** Every identifier a request may carry, longest first, so an answer can be compared with its refs blanked. */
function refs(): string[] {
  const all = [A, B, C].flatMap((t) => [t.slug, t.id, ...Object.values(objectsOf(t))]);
  all.push(ghostTenant.slug, ghostTenant.id, ...Object.values(ghost));
  return [...new Set(all)].sort((x, y) => y.length - x.length);
}

/** Status and body with every ref the caller sent replaced: what two answers must share. */
function normalized(a: Answer): string {
  let text = a.text;
  for (const r of refs()) text = text.split(r).join("<ref>");
  return `${a.status} ${text}`;
}

/** What would tell a caller something of B: its ids, slug, object names and ids, key prefix, token ids. */
function markersOf(t: Provisioned): string[] {
  return [t.slug, t.id, t.keyPrefix, t.tokens.owner.id, t.tokens.admin.id, ...Object.values(objectsOf(t))];
}

function leaks(text: string, t: Provisioned): string[] {
  return markersOf(t).filter((m) => text.toLowerCase().includes(m.toLowerCase()));
}

function errorCode(a: Answer): string | undefined {
  try {
    const body = JSON.parse(a.text) as { error?: { code?: string; data?: { code?: string } } };
    return body.error?.data?.code ?? body.error?.code;
  } catch {
    return undefined;
  }
}

/** A's credentials (the platform token is the control, checked apart). */
interface Cred {
  kind: string;
  headers: Headers_ | undefined;
  /** The refusal every REST route of B gives it: 404 for A's admins (B does not exist for them), else 401. */
  restStatus: number;
  /** A console session (cookie): lists its own tenants on GET /v1/tenants, and is not signed out here. */
  session?: boolean;
}

const bearer = (token: string): Headers_ => ({ authorization: `Bearer ${token}` });
let consoleA: Headers_ = {};

function credentials(): Cred[] {
  return [
    ...ROLES.map((role) => ({
      kind: `A ${role} token`,
      headers: bearer(A.tokens[role].token),
      restStatus: 404,
    })),
    { kind: "A owner's console session", headers: consoleA, restStatus: 404, session: true },
    { kind: "A API key", headers: bearer(A.key), restStatus: 401 },
    { kind: "A JWT", headers: bearer(jwtA), restStatus: 401 },
    { kind: "no credential", headers: undefined, restStatus: 401 },
  ];
}

/**
 * A person who is an owner of `t`, signed in to the console. The user, membership and session rows
 * are written as sign-in writes them (sign-in itself is tested in apps/api); the API then
 * authenticates the cookie and hands out the CSRF token as for any session.
 */
async function consoleOwnerOf(t: Provisioned): Promise<Headers_> {
  const user = await db.prisma.user.create({
    data: { issuer: as.issuer, subject: `owner-${run}`, email: `owner-${run}@a.example`, name: "A owner" },
  });
  await db.prisma.member.create({
    data: { tenantId: t.id, email: user.email!, role: "owner", userId: user.id, joinedAt: new Date() },
  });
  const token = `mgs_${randomBytes(32).toString("base64url")}`;
  await db.prisma.consoleSession.create({
    data: { userId: user.id, hash: hashToken(token), expiresAt: new Date(Date.now() + 3_600_000) },
  });
  const cookie = { cookie: `${SESSION_COOKIE}=${token}` };
  const me = await api("GET", "/v1/auth/me", cookie);
  const csrf = (JSON.parse(me.text) as { session?: { csrfToken?: string } }).session?.csrfToken;
  if (me.status !== 200 || !csrf) throw new Error(`console session not accepted: ${me.status} ${me.text}`);
  return { ...cookie, [CSRF_HEADER]: csrf };
}

async function snapshotOf(t: Provisioned): Promise<string> {
  const p = db.prisma;
  const where = { where: { tenantId: t.id }, orderBy: { id: "asc" as const } };
  const rows = {
    tenant: await p.tenant.findUnique({ where: { id: t.id } }),
    members: await p.member.findMany(where),
    adminTokens: await p.adminToken.findMany(where),
    apiKeys: await p.apiKey.findMany(where),
    identityProviders: await p.identityProvider.findMany(where),
    oauthClients: await p.oAuthClient.findMany(where),
    upstreams: await p.upstream.findMany(where),
    credentials: await p.upstreamCredential.findMany(where),
    oauthStates: await p.oAuthState.findMany(where),
    policies: await p.policy.findMany(where),
    audit: await p.auditEvent.findMany(where),
  };
  // lastUsedAt is bookkeeping of B's own use of its key and tokens, written off the request path.
  return JSON.stringify(rows, (k, v) => (k === "lastUsedAt" ? undefined : v), 1);
}

// ---------------------------------------------------------------------------------------------
// Provisioning, through the API with the platform token as an operator would
// ---------------------------------------------------------------------------------------------
async function provision(prefix: string): Promise<Provisioned> {
  const admin = stack.admin;
  const slug = `${prefix}-${run}`;
  const tenant = await admin.createTenant(slug);
  const base = `/v1/tenants/${slug}`;
  await admin.putPolicy(slug, ALLOW_ALL);
  const client = await admin.ok<Json>("POST", `${base}/oauth-clients`, {
    name: `${slug}-as`,
    issuer: as.issuer,
    clientId: CC_CLIENT.id,
    clientSecret: CC_CLIENT.secret,
    scopes: [RESOURCE_SCOPE],
  });
  const upstream = `${slug}-tools`;
  await admin.createUpstream(slug, { name: upstream, url: tools.url });
  // The OAuth upstreams are REST objects only here (no worker gets their tokens): disabled, so the
  // gateway's lists do not wait on them.
  const ccUpstream = `${slug}-cc`;
  const acUpstream = `${slug}-ac`;
  await admin.ok("POST", `${base}/upstreams`, {
    name: ccUpstream,
    transport: "streamable-http",
    url: tools.url,
    auth: { mode: "oauth-client-credentials", oauthClient: client.id },
    enabled: false,
  });
  await admin.ok("POST", `${base}/upstreams`, {
    name: acUpstream,
    transport: "streamable-http",
    url: tools.url,
    auth: { mode: "oauth-authorization-code", oauthClient: client.id },
    enabled: false,
  });
  const apiKey = await admin.createKey(slug, { name: `${slug}-agent`, agent: `${slug}-agent` });
  const idp = await admin.ok<Json>("POST", `${base}/identity-providers`, {
    name: `${slug}-idp`,
    issuer: as.issuer,
  });
  const tokens = {} as Record<Role, { id: string; token: string }>;
  for (const role of ROLES) {
    const t = await admin.ok<Json>("POST", `${base}/tokens`, { name: `${slug}-${role}`, role });
    tokens[role] = { id: String(t.id), token: String(t.token) };
  }
  const refresh = await admin.ok<Json>("POST", `${base}/upstreams/${ccUpstream}/credentials/refresh`, {});
  const member = await admin.ok<Json>("POST", `${base}/members`, {
    email: `${slug}-member@example.com`,
    role: "viewer",
  });
  return {
    slug,
    id: tenant.id,
    gatewayUrl: tenant.gatewayUrl,
    upstream,
    ccUpstream,
    acUpstream,
    keyId: apiKey.id,
    key: apiKey.key,
    keyPrefix: apiKey.prefix,
    idpId: String(idp.id),
    oauthClientId: String(client.id),
    credentialId: String(refresh.credentialId),
    memberId: String(member.id),
    tokens,
  };
}

async function clientCredentialsToken(resource: string): Promise<string> {
  const res = await fetch(`${as.issuer}/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${CC_CLIENT.id}:${CC_CLIENT.secret}`).toString("base64")}`,
    },
    body: new URLSearchParams({ grant_type: "client_credentials", resource, scope: RESOURCE_SCOPE }),
  });
  const body = (await res.json()) as { access_token?: string };
  if (!res.ok || !body.access_token) throw new Error(`token request failed: ${res.status}`);
  return body.access_token;
}

beforeAll(async () => {
  [tools, as, stack] = await Promise.all([
    startFixture("tools-server.mjs", ["--name", "iso"]),
    startAuthServer({ accessTokenTtl: 600 }),
    Stack.start({ gateways: 1 }),
  ]);
  db = await createDb({ databaseUrl: stack.db.url });
  routes = await apiRouteTable(stack.db.url);
  [A, B, C] = await Promise.all([provision("ta"), provision("tb"), provision("tc")]);
  // A JWT of A: the issuer both A and B trust, audience A's gateway URL.
  jwtA = await clientCredentialsToken(A.gatewayUrl);
  consoleA = await consoleOwnerOf(A);
  bSession = (await rawInitialize(stack.mcpUrl(B.slug), { token: B.key })).sessionId;
  bSnapshot = await snapshotOf(B);
}, 180_000);

afterAll(async () => {
  await db?.close();
  await stack?.stop();
  await as?.close();
});

describe("REST API: generated from the route table", () => {
  it("every route is classified (public, platform-only, or tenant-scoped under /v1/tenants/:tenant)", () => {
    expect(routes.length).toBeGreaterThan(30);
    const unclassified = routes.filter((r) => classify(r) === undefined).map(key);
    expect(unclassified, "classify these routes in tenant-isolation.test.ts (CLASSIFIED)").toEqual([]);
  });

  it("A's credentials are valid where they belong (so every refusal below is about B)", async () => {
    for (const role of ROLES) {
      expect((await api("GET", `/v1/tenants/${A.slug}`, bearer(A.tokens[role].token))).status).toBe(200);
    }
    expect((await api("GET", `/v1/tenants/${A.slug}`, consoleA)).status).toBe(200);
    for (const token of [A.key, jwtA]) {
      const res = await rawMcp(
        stack.mcpUrl(A.slug),
        {
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: {
            protocolVersion: "2025-11-25",
            capabilities: {},
            clientInfo: { name: "a", version: "1" },
          },
        },
        { token },
      );
      expect(res.status).toBe(200);
    }
  });

  it("tenant-scoped routes of B: every credential of A gets the answer it gets for an object or tenant that does not exist", async () => {
    const tenantRoutes = routes.filter((r) => classify(r) === "tenant");
    const failures: string[] = [];
    const jobs: Array<{ route: ApiRoute; cred: Cred }> = [];
    for (const route of tenantRoutes) for (const cred of credentials()) jobs.push({ route, cred });
    await pool(jobs, 6, async ({ route, cred }) => {
      const body = BODIES[key(route)];
      const variants: Array<[string, string]> = [
        ["B by slug, B's objects", fill(route, B.slug, objectsOf(B))],
        ["B by slug, no such objects", fill(route, B.slug, ghost)],
        ["B by id, B's objects", fill(route, B.id, objectsOf(B))],
        ["B by id, no such objects", fill(route, B.id, ghost)],
        ["no such tenant (slug)", fill(route, ghostTenant.slug, ghost)],
        ["no such tenant (id)", fill(route, ghostTenant.id, ghost)],
      ];
      const answers: Array<[string, Answer]> = [];
      for (const [label, path] of variants) {
        answers.push([label, await api(route.method, path, cred.headers, body?.(objectsOf(B)))]);
      }
      const [firstLabel, first] = answers[0]!;
      if (first.status !== cred.restStatus) {
        failures.push(
          `${key(route)} ${cred.kind} ${firstLabel}: ${first.status} ${first.text.slice(0, 200)}`,
        );
      }
      for (const [label, a] of answers.slice(1)) {
        if (normalized(a) !== normalized(first)) {
          failures.push(
            `${key(route)} ${cred.kind}: "${label}" answers ${normalized(a).slice(0, 200)} but "${firstLabel}" ${normalized(first).slice(0, 200)}`,
          );
        }
      }
    });
    expect(failures).toEqual([]);
  });

  it("A's own paths holding B's objects: the same answer as for objects that do not exist", async () => {
    const withObjects = routes.filter((r) => classify(r) === "tenant" && params(r.path).length > 1);
    const failures: string[] = [];
    const jobs: Array<{ route: ApiRoute; cred: Cred }> = [];
    for (const route of withObjects) for (const cred of credentials()) jobs.push({ route, cred });
    await pool(jobs, 6, async ({ route, cred }) => {
      const body = BODIES[key(route)];
      const variants: Array<[string, string]> = [
        ["A's path, B's objects", fill(route, A.slug, objectsOf(B))],
        ["A's path, no such objects", fill(route, A.slug, ghost)],
        ["A by id, B's objects", fill(route, A.id, objectsOf(B))],
        // Only the last object foreign: A's upstream with B's credential, and so on.
        ["A's parents, B's last object", fill(route, A.slug, objectsOf(A), objectsOf(B))],
        ["A's parents, no such last object", fill(route, A.slug, objectsOf(A), ghost)],
      ];
      const answers: Array<[string, Answer]> = [];
      for (const [label, path] of variants) {
        answers.push([label, await api(route.method, path, cred.headers, body?.(objectsOf(A)))]);
      }
      const [firstLabel, first] = answers[0]!;
      if (first.status < 400) {
        failures.push(`${key(route)} ${cred.kind} ${firstLabel}: served (${first.status})`);
      }
      // A viewer may be refused for its role before the object is looked up; the rest must be 404.
      const parentsOnly = answers.slice(0, 3);
      for (const group of [parentsOnly, answers.slice(3)]) {
        const [l0, a0] = group[0]!;
        for (const [label, a] of group.slice(1)) {
          if (normalized(a) !== normalized(a0)) {
            failures.push(
              `${key(route)} ${cred.kind}: "${label}" answers ${normalized(a).slice(0, 200)} but "${l0}" ${normalized(a0).slice(0, 200)}`,
            );
          }
        }
        for (const [label, a] of group) {
          if (a.status < 400)
            failures.push(
              `${key(route)} ${cred.kind} ${label}: served (${a.status}) ${a.text.slice(0, 200)}`,
            );
        }
      }
    });
    expect(failures).toEqual([]);
  });

  it("what A's tokens read and list in A shows nothing of B", async () => {
    const reads = routes.filter((r) => classify(r) === "tenant" && r.method === "GET");
    const failures: string[] = [];
    for (const route of reads) {
      for (const cred of credentials().filter((c) => c.restStatus === 404)) {
        for (const ref of [A.slug, A.id]) {
          const a = await api("GET", fill(route, ref, objectsOf(A)), cred.headers);
          if (a.status !== 200)
            failures.push(`${key(route)} ${cred.kind}: ${a.status} ${a.text.slice(0, 200)}`);
          const leaked = leaks(a.text, B);
          if (leaked.length > 0) failures.push(`${key(route)} ${cred.kind} shows B's ${leaked.join(", ")}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it("platform-only routes: A's tokens are refused (403), other credentials are unauthenticated (401), nothing of B shown", async () => {
    const platformRoutes = routes.filter((r) => classify(r) === "platform");
    expect(platformRoutes.length).toBeGreaterThan(0);
    const failures: string[] = [];
    for (const route of platformRoutes) {
      for (const cred of credentials()) {
        const a = await api(route.method, route.path, cred.headers, BODIES[key(route)]?.(objectsOf(B)));
        // A console member lists the tenants it belongs to (only A); A's tokens need platform power.
        const listsOwn = cred.session && key(route) === "GET /v1/tenants";
        const want = listsOwn ? 200 : cred.restStatus === 404 ? 403 : 401;
        if (a.status !== want)
          failures.push(`${key(route)} ${cred.kind}: ${a.status} ${a.text.slice(0, 200)}`);
        const leaked = leaks(a.text, B);
        if (leaked.length > 0) failures.push(`${key(route)} ${cred.kind} shows B's ${leaked.join(", ")}`);
      }
      // Control: the platform token is served, and the tenant list does name B.
      const control = await api(
        route.method,
        route.path,
        bearer(stack.adminToken),
        BODIES[key(route)]?.(objectsOf(B)),
      );
      if (control.status >= 300) failures.push(`${key(route)} platform control: ${control.status}`);
      if (key(route) === "GET /v1/tenants" && !control.text.includes(B.id))
        failures.push("GET /v1/tenants (platform) does not list B: the leak check above proves nothing");
    }
    expect(failures).toEqual([]);
  });

  it("public routes: every credential gets the answer no credential gets, and nothing of B", async () => {
    const publicRoutes = routes.filter((r) => classify(r) === "public");
    const failures: string[] = [];
    for (const route of publicRoutes) {
      const path = route.path.replace(/:([A-Za-z0-9_]+)/g, "x");
      const none = await api(route.method, path, undefined);
      if (none.status >= 500) failures.push(`${key(route)} no credential: ${none.status}`);
      for (const cred of [
        ...credentials(),
        { kind: "platform", headers: bearer(stack.adminToken), restStatus: 0 },
      ]) {
        const a = await api(route.method, path, cred.headers);
        if (a.status !== none.status)
          failures.push(`${key(route)} ${cred.kind}: ${a.status}, without credentials ${none.status}`);
        const leaked = leaks(a.text, B);
        if (leaked.length > 0) failures.push(`${key(route)} ${cred.kind} shows B's ${leaked.join(", ")}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it("routes about the caller itself show nothing of B", async () => {
    const selfRoutes = routes.filter((r) => classify(r) === "self");
    const failures: string[] = [];
    for (const route of selfRoutes) {
      // Signing out would end the session the rest of this file uses.
      for (const cred of credentials().filter((c) => !(c.session && route.method !== "GET"))) {
        const a = await api(route.method, route.path, cred.headers, BODIES[key(route)]?.(objectsOf(A)));
        if (a.status >= 500 || (cred.restStatus === 401 && a.status !== 401))
          failures.push(`${key(route)} ${cred.kind}: ${a.status} ${a.text.slice(0, 200)}`);
        const leaked = leaks(a.text, B);
        if (leaked.length > 0) failures.push(`${key(route)} ${cred.kind} shows B's ${leaked.join(", ")}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it("control: the platform token is served every tenant-scoped route of tenant C with the same requests", async () => {
    const tenantRoutes = routes.filter((r) => classify(r) === "tenant");
    // Reads and writes first, then deletes from the deepest object up, the tenant last.
    const depth = (r: ApiRoute) => r.path.split("/").length;
    const ordered = [
      ...tenantRoutes.filter((r) => r.method !== "DELETE"),
      ...tenantRoutes.filter((r) => r.method === "DELETE").sort((x, y) => depth(y) - depth(x)),
    ];
    const failures: string[] = [];
    for (const route of ordered) {
      const a = await api(
        route.method,
        fill(route, C.slug, objectsOf(C)),
        bearer(stack.adminToken),
        BODIES[key(route)]?.(objectsOf(C)),
      );
      // 409 (e.g. an OAuth client still in use) also shows the request reached C's object.
      if (a.status >= 300 && a.status !== 409) {
        failures.push(`${key(route)}: ${a.status} ${a.text.slice(0, 300)}`);
      }
    }
    expect(failures).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Gateway. Its paths are fixed (gateway.ts): /t/{tenant}/mcp[/{upstream}] with POST, GET and
// DELETE, and the public RFC 9728 metadata. A tenant's existence is public by design (its
// metadata document answers anyone); what must stay hidden are its sessions and upstreams.
// ---------------------------------------------------------------------------------------------
interface GatewayProbe {
  name: string;
  method: "POST" | "GET" | "DELETE";
  /** Upstream segment of the path, when the probe targets one upstream. */
  single: boolean;
  body?: (o: { upstream: string }) => unknown;
  /** Sends the session id. */
  session: boolean;
  modern?: boolean;
}

const INIT = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "probe", version: "1" } },
};
const MODERN_META = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientCapabilities": {},
};

const GATEWAY_PROBES: GatewayProbe[] = [
  { name: "initialize", method: "POST", single: false, session: false, body: () => INIT },
  { name: "initialize on one upstream", method: "POST", single: true, session: false, body: () => INIT },
  {
    name: "tools/list in a session",
    method: "POST",
    single: false,
    session: true,
    body: () => ({ jsonrpc: "2.0", id: 2, method: "tools/list" }),
  },
  {
    name: "tools/call in a session",
    method: "POST",
    single: false,
    session: true,
    body: (o) => ({
      jsonrpc: "2.0",
      id: 3,
      method: "tools/call",
      params: { name: `${o.upstream}_echo`, arguments: { text: "x" } },
    }),
  },
  {
    name: "a JSON-RPC response in a session",
    method: "POST",
    single: false,
    session: true,
    body: () => ({ jsonrpc: "2.0", id: "x:1", result: {} }),
  },
  { name: "GET stream of a session", method: "GET", single: false, session: true },
  { name: "DELETE a session", method: "DELETE", single: false, session: true },
  {
    name: "2026-07-28 tools/call",
    method: "POST",
    single: false,
    session: false,
    modern: true,
    body: (o) => ({
      jsonrpc: "2.0",
      id: 4,
      method: "tools/call",
      params: { name: `${o.upstream}_echo`, arguments: { text: "x" }, _meta: MODERN_META },
    }),
  },
  {
    name: "2026-07-28 tools/list on one upstream",
    method: "POST",
    single: true,
    session: false,
    modern: true,
    body: () => ({ jsonrpc: "2.0", id: 5, method: "tools/list", params: { _meta: MODERN_META } }),
  },
];

async function gatewayRequest(
  probe: GatewayProbe,
  tenantRef: string,
  o: { upstream: string; session: string },
  auth: Headers_ | undefined,
): Promise<Answer> {
  const url = `${stack.gateways[0]!.url}/t/${encodeURIComponent(tenantRef)}/mcp${probe.single ? `/${encodeURIComponent(o.upstream)}` : ""}`;
  const body = probe.body?.(o) as { method?: string; params?: { name?: string } } | undefined;
  const headers: Record<string, string> = {
    accept: "application/json, text/event-stream",
    ...auth,
    ...(probe.session ? { "mcp-session-id": o.session, "mcp-protocol-version": "2025-11-25" } : {}),
    ...(probe.modern
      ? {
          "mcp-protocol-version": "2026-07-28",
          "mcp-method": body?.method ?? "",
          ...(body?.params?.name ? { "mcp-name": body.params.name } : {}),
        }
      : {}),
    ...(body ? { "content-type": "application/json" } : {}),
  };
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 15_000);
  try {
    const res = await fetch(url, {
      method: probe.method,
      headers,
      body: body ? JSON.stringify(body) : undefined,
      signal: abort.signal,
    });
    // A stream that opened would be a failure in itself; read what is there and stop.
    const text = (res.headers.get("content-type") ?? "").includes("text/event-stream")
      ? `<stream> ${res.status}`
      : await res.text();
    abort.abort();
    return { status: res.status, text, headers: res.headers };
  } finally {
    clearTimeout(timer);
  }
}

describe("gateway", () => {
  it("B's paths: every credential of A is unauthenticated, whether B's session and upstream exist or not", async () => {
    const failures: string[] = [];
    const creds = [
      ...credentials(),
      { kind: "platform token", headers: bearer(stack.adminToken), restStatus: 401 },
    ];
    const bObjects = { upstream: B.upstream, session: bSession };
    const none = { upstream: ghost.upstream, session: randomUUID() };
    for (const probe of GATEWAY_PROBES) {
      for (const cred of creds) {
        const answers: Array<[string, Answer]> = [];
        for (const ref of [B.slug, B.id]) {
          answers.push([
            `${ref === B.id ? "id" : "slug"}, B's objects`,
            await gatewayRequest(probe, ref, bObjects, cred.headers),
          ]);
          answers.push([
            `${ref === B.id ? "id" : "slug"}, no such objects`,
            await gatewayRequest(probe, ref, none, cred.headers),
          ]);
        }
        for (const [label, a] of answers) {
          if (a.status !== 401 || errorCode(a) !== ErrorCode.UNAUTHENTICATED)
            failures.push(`${probe.name} ${cred.kind} ${label}: ${a.status} ${a.text.slice(0, 200)}`);
        }
        const [l0, a0] = answers[0]!;
        for (const [label, a] of answers.slice(1)) {
          const same =
            normalized(a) === normalized(a0) &&
            a.headers.get("www-authenticate") === a0.headers.get("www-authenticate");
          if (!same) failures.push(`${probe.name} ${cred.kind}: "${label}" differs from "${l0}"`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it("A's own gateway paths with B's session id or upstream name: the answer for ones that do not exist", async () => {
    const failures: string[] = [];
    const aSession = (await rawInitialize(stack.mcpUrl(A.slug), { token: A.key })).sessionId;
    for (const probe of GATEWAY_PROBES.filter((p) => p.session || p.single)) {
      for (const [kind, token] of [
        ["A API key", A.key],
        ["A JWT", jwtA],
      ] as const) {
        const withB = await gatewayRequest(
          probe,
          A.slug,
          { upstream: B.upstream, session: bSession },
          bearer(token),
        );
        const withNone = await gatewayRequest(
          probe,
          A.slug,
          { upstream: ghost.upstream, session: randomUUID() },
          bearer(token),
        );
        if (withB.status < 400)
          failures.push(`${probe.name} ${kind} with B's objects: served ${withB.status}`);
        if (normalized(withB) !== normalized(withNone))
          failures.push(
            `${probe.name} ${kind}: B's objects ${normalized(withB).slice(0, 200)} vs none ${normalized(withNone).slice(0, 200)}`,
          );
      }
    }
    // Control: A's own session on A's path is served.
    const own = await rawMcp(
      stack.mcpUrl(A.slug),
      { jsonrpc: "2.0", id: 9, method: "tools/list" },
      {
        token: A.key,
        sessionId: aSession,
        protocolVersion: "2025-11-25",
      },
    );
    expect(own.status).toBe(200);
    expect(failures).toEqual([]);
  });

  it("public gateway paths tell nothing of B beyond its metadata document", async () => {
    const gw = stack.gateways[0]!.url;
    for (const path of ["/healthz", "/readyz"]) {
      const res = await fetch(`${gw}${path}`);
      expect(res.status).toBe(200);
      expect(leaks(await res.text(), B)).toEqual([]);
    }
    // Metrics name tenants, upstreams and tools: never on the agents' port (GATEWAY_METRICS_PORT).
    const metrics = await fetch(`${gw}/metrics`);
    expect(metrics.status).toBe(404);
    expect(leaks(await metrics.text(), B)).toEqual([]);
    // RFC 9728: the metadata is public by design; it names B's issuers and nothing else of B.
    const prm = await fetch(`${gw}/.well-known/oauth-protected-resource/t/${B.slug}/mcp`);
    expect(prm.status).toBe(200);
    const meta = (await prm.json()) as Json;
    expect(Object.keys(meta).sort()).toEqual([
      "authorization_servers",
      "bearer_methods_supported",
      "resource",
      "resource_name",
      "scopes_supported",
    ]);
    // Upstream names are not confirmed: any name gets the same document shape.
    const ofUpstream = await fetch(
      `${gw}/.well-known/oauth-protected-resource/t/${B.slug}/mcp/${B.upstream}`,
    );
    const ofNone = await fetch(
      `${gw}/.well-known/oauth-protected-resource/t/${B.slug}/mcp/${ghost.upstream}`,
    );
    expect(ofUpstream.status).toBe(ofNone.status);
  });

  it("B is unchanged in the database, and B's session still serves B", async () => {
    expect(await snapshotOf(B)).toBe(bSnapshot);
    const res = await rawMcp(
      stack.mcpUrl(B.slug),
      { jsonrpc: "2.0", id: 9, method: "tools/list" },
      {
        token: B.key,
        sessionId: bSession,
        protocolVersion: "2025-11-25",
      },
    );
    expect(res.status).toBe(200);
    const names = ((res.messages[0]?.result as { tools?: Array<{ name: string }> })?.tools ?? []).map(
      (t) => t.name,
    );
    expect(names).toContain(`${B.upstream}_echo`);
  });
});

// Issue 17 item 1: a session is bound to its tenant and endpoint, not only to its principal. The
// anonymous principal has the same id in every tenant, so only the tenant check stops this.
describe("sessions are bound to their tenant and endpoint", () => {
  let X: string;
  let Y: string;

  beforeAll(async () => {
    X = `anon-x-${run}`;
    Y = `anon-y-${run}`;
    for (const slug of [X, Y]) {
      await stack.admin.createTenant(slug, { anonymousAccess: true });
      await stack.admin.putPolicy(slug, ALLOW_ALL);
      await stack.admin.createUpstream(slug, { name: "alpha", url: tools.url });
      await stack.admin.createUpstream(slug, { name: "beta", url: tools.url });
    }
  });

  const list = (url: string, sessionId: string) =>
    rawMcp(
      url,
      { jsonrpc: "2.0", id: 2, method: "tools/list" },
      { sessionId, protocolVersion: "2025-11-25" },
    );

  it("an anonymous session of /t/X/mcp is not found on /t/Y/mcp", async () => {
    const { sessionId } = await rawInitialize(stack.mcpUrl(X));
    expect((await list(stack.mcpUrl(X), sessionId)).status).toBe(200);
    const foreign = await list(stack.mcpUrl(Y), sessionId);
    expect(foreign.status).toBe(404);
    expect((foreign.messages[0]?.error as { data?: { code?: string } })?.data?.code).toBe(
      "SESSION_NOT_FOUND",
    );
  });

  it("a session of /t/X/mcp/alpha is not found on /t/X/mcp nor on /t/X/mcp/beta", async () => {
    const { sessionId } = await rawInitialize(stack.mcpUrl(X, "alpha"));
    expect((await list(stack.mcpUrl(X, "alpha"), sessionId)).status).toBe(200);
    for (const url of [stack.mcpUrl(X), stack.mcpUrl(X, "beta")]) {
      const other = await list(url, sessionId);
      expect(other.status, url).toBe(404);
      expect((other.messages[0]?.error as { data?: { code?: string } })?.data?.code).toBe(
        "SESSION_NOT_FOUND",
      );
    }
  });
});
