// Fuzzing the gateway and the REST API with generated requests (issue 8): malformed, oversized,
// wrongly typed and wrongly encoded bodies, headers, methods, JSON-RPC ids and params, session
// ids, protocol versions, content types and invalid UTF-8, sent over raw HTTP to the real
// processes. Every answer must come (no dropped connection), never be a 5xx, and be an error in
// the documented shape with a code from the one catalogue: a JSON-RPC error with `error.data.code`
// on the gateway, `{"error": {code, message}}` on the API. Neither process may die.
//
// FUZZ_RUNS=N sets the number of requests per target (default 1000 each: about 20 s on a quiet machine);
// FUZZ_SEED=S replays a run (FUZZ_VERBOSE=1 prints every request and answer). A failure prints
// the seed, the shrunk request and the answer.
import { randomInt } from "node:crypto";
import http from "node:http";
import { ErrorCode } from "@gatehouse/shared";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rawInitialize } from "../support/agent.js";
import { printLogsOnFailure } from "../support/hooks.js";
import { type Fixture, startFixture } from "../support/processes.js";
import { type ApiRoute, apiRouteTable } from "../support/routes.js";
import { Stack } from "../support/stack.js";

printLogsOnFailure();

const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : randomInt(2 ** 31);
const MAX_BODY = 64 * 1024;
const CATALOGUE = new Set<string>(Object.values(ErrorCode));

let stack: Stack;
let tools: Fixture;
let routes: ApiRoute[];
const T = "fuzz";
const API_T = "fuzz-api";
let tenantId = "";
let apiKey = "";
let sessionId = "";
let singleSessionId = "";

beforeAll(async () => {
  [tools, stack] = await Promise.all([
    startFixture("tools-server.mjs", ["--name", "tools"]),
    Stack.start({ gateways: 1, gatewayEnv: { GATEWAY_MAX_BODY_BYTES: String(MAX_BODY) } }),
  ]);
  routes = await apiRouteTable(stack.db.url);
  const tenant = await stack.admin.createTenant(T);
  tenantId = tenant.id;
  await stack.admin.createTenant(API_T);
  await stack.admin.createUpstream(T, { name: "tools", url: tools.url });
  await stack.admin.putPolicy(T, {
    defaultEffect: "deny",
    rules: [
      { id: "no-deletes", effect: "deny", tools: ["delete_*"] },
      { id: "some", effect: "allow", principals: ["*"], tools: ["echo", "whoami", "stats", "get_secret"] },
    ],
  });
  apiKey = (await stack.admin.createKey(T, { name: "fuzz" })).key;
  sessionId = (await rawInitialize(stack.mcpUrl(T), { token: apiKey })).sessionId;
  singleSessionId = (await rawInitialize(stack.mcpUrl(T, "tools"), { token: apiKey })).sessionId;
  console.log(`fuzz: seed ${SEED}, ${RUNS} requests per target (FUZZ_SEED / FUZZ_RUNS to change)`);
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

// ---------------------------------------------------------------------------------------------
// Raw HTTP: node:http, so that what fetch refuses to send (odd methods, latin1 header bytes,
// bodies that are not UTF-8, chunked bodies) goes out as generated.
// ---------------------------------------------------------------------------------------------
interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  chunked?: boolean;
}

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** An open event stream (a GET stream or a listen): read briefly, then closed by us. */
  stream: boolean;
}

// One connection per request: an answer is then owed on the connection that carried the request,
// and a request cannot be blamed for what an earlier one left on a reused socket.
const agent = new http.Agent({ keepAlive: false });

function send(base: string, r: Req): Promise<Res> {
  const url = new URL(base);
  return new Promise<Res>((resolve, reject) => {
    const headers: Record<string, string> = { ...r.headers };
    if (r.body && !r.chunked) headers["content-length"] = String(r.body.length);
    // Node frames a body chunked by default only for POST, PUT and PATCH; say so for the others.
    if (r.body && r.chunked) headers["transfer-encoding"] = "chunked";
    const req = http.request(
      { host: url.hostname, port: url.port, method: r.method, path: r.path, headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        const open =
          String(res.headers["content-type"] ?? "").includes("text/event-stream") &&
          res.headers["content-length"] === undefined;
        const done = (stream: boolean) =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
            stream,
          });
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => done(false));
        res.on("error", reject);
        if (open) {
          setTimeout(() => {
            res.destroy();
            done(true);
          }, 50);
        }
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error("no answer within 20 s")));
    req.on("error", reject);
    if (r.body && r.chunked) {
      req.write(r.body.subarray(0, Math.floor(r.body.length / 2)));
      req.end(r.body.subarray(Math.floor(r.body.length / 2)));
    } else req.end(r.body);
  });
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------
/** Header-safe text: printable ASCII and latin1 bytes (0x80-0xff: invalid UTF-8 on the wire). */
const latin1 = (maxLength = 40) =>
  fc.string({
    unit: fc.oneof(
      fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
      fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)),
    ),
    maxLength,
  });

const pathSegment = fc.oneof(
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
  fc.constantFrom("%", "%zz", "%00", "%C3%28", "%FF", "..", "%2F", "%2e%2e", ".", "a".repeat(300), ""),
  fc.stringMatching(/^[a-z0-9-]{1,70}$/),
);

const idArb = fc.oneof(
  fc.integer(),
  fc.string({ maxLength: 20 }),
  fc.constantFrom(null, true, 0, -0, 1.5, 1e308, "", "x:1"),
  fc.double(),
  fc.jsonValue({ maxDepth: 2 }),
);

const KNOWN_METHODS = [
  "initialize",
  "ping",
  "tools/list",
  "tools/call",
  "prompts/list",
  "prompts/get",
  "resources/list",
  "resources/read",
  "resources/templates/list",
  "resources/subscribe",
  "resources/unsubscribe",
  "completion/complete",
  "logging/setLevel",
  "server/discover",
  "subscriptions/listen",
  "notifications/initialized",
  "notifications/cancelled",
  "notifications/roots/list_changed",
];
const TOOL_NAMES = [
  "tools_echo",
  "tools_whoami",
  "tools_stats",
  "tools_delete_user",
  "echo",
  "whoami",
  "nope",
];

const MODERN_META = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientCapabilities": {},
};

const paramsArb = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 3 }),
  fc.record(
    {
      name: fc.oneof(fc.constantFrom(...TOOL_NAMES), fc.jsonValue({ maxDepth: 1 })),
      arguments: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.record({ text: fc.string() })),
      uri: fc.oneof(fc.constantFrom("gatehouse://tools/tools://info", "tools://info"), fc.string()),
      protocolVersion: fc.oneof(fc.constantFrom("2025-11-25", "2026-07-28", "1999-01-01"), fc.jsonValue()),
      capabilities: fc.jsonValue({ maxDepth: 2 }),
      clientInfo: fc.jsonValue({ maxDepth: 2 }),
      level: fc.oneof(fc.constantFrom("debug", "error"), fc.jsonValue()),
      requestId: idArb,
      cursor: fc.oneof(fc.string(), fc.jsonValue()),
      _meta: fc.oneof(fc.constant(MODERN_META), fc.jsonValue({ maxDepth: 2 })),
    },
    { requiredKeys: [] },
  ),
);

const messageArb = fc.oneof(
  // A request or notification, every field possibly wrong.
  fc.record(
    {
      jsonrpc: fc.oneof(fc.constant("2.0"), fc.jsonValue({ maxDepth: 1 })),
      id: idArb,
      method: fc.oneof(fc.constantFrom(...KNOWN_METHODS), fc.string({ maxLength: 30 }), fc.jsonValue()),
      params: paramsArb,
    },
    { requiredKeys: ["jsonrpc"] },
  ),
  // A JSON-RPC response (to a relayed request that may not exist).
  fc.record(
    {
      jsonrpc: fc.constant("2.0"),
      id: idArb,
      result: fc.jsonValue({ maxDepth: 2 }),
      error: fc.jsonValue({ maxDepth: 2 }),
    },
    { requiredKeys: ["jsonrpc", "id"] },
  ),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
  fc.jsonValue({ maxDepth: 4 }),
);

const bodyArb: fc.Arbitrary<Buffer | undefined> = fc.oneof(
  { weight: 8, arbitrary: messageArb.map((m) => Buffer.from(JSON.stringify(m) ?? "null")) },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) },
  {
    weight: 1,
    // Invalid UTF-8 inside a JSON string, and a lone surrogate escape.
    arbitrary: fc
      .uint8Array({ minLength: 1, maxLength: 8 })
      .map((b) =>
        Buffer.concat([
          Buffer.from(
            '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"tools_echo","arguments":{"text":"',
          ),
          Buffer.from(b.map((x) => x | 0x80)),
          Buffer.from('\\ud800"}}}'),
        ]),
      ),
  },
  {
    weight: 1,
    // Over the gateway's limit (and the API's 1 MiB, sometimes), or deeply nested.
    arbitrary: fc.constantFrom(
      Buffer.from(
        JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping", params: { pad: "x".repeat(MAX_BODY) } }),
      ),
      Buffer.from(`${"[".repeat(20_000)}${"]".repeat(20_000)}`),
      Buffer.from(
        `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":${'{"a":'.repeat(5_000)}1${"}".repeat(5_000)}}`,
      ),
      Buffer.alloc(1024 * 1024 + 10, 0x20),
      Buffer.from(""),
    ),
  },
);

const methodArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant("POST") },
  { weight: 3, arbitrary: fc.constantFrom("GET", "DELETE", "PUT", "PATCH", "OPTIONS", "HEAD") },
  { weight: 1, arbitrary: fc.constantFrom("PROPFIND", "M-SEARCH", "TRACE", "CONNECTX", "post") },
);

/** Present half of the time. */
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });
/** Present one time in ten: headers that stop a request early (a foreign Host or Origin). */
const rarely = <T>(arb: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });

const gatewayReqArb: fc.Arbitrary<Req> = fc
  .record({
    method: methodArb,
    path: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(`/t/${T}/mcp`, `/t/${T}/mcp/tools`) },
      { weight: 1, arbitrary: fc.constant(`/t/${T}/mcp`).map((p) => p.replace(T, tenantId)) },
      {
        weight: 2,
        arbitrary: fc
          .tuple(pathSegment, optional(pathSegment))
          .map(([t, u]) => `/t/${t}/mcp${u === undefined ? "" : `/${u}`}`),
      },
      { weight: 1, arbitrary: pathSegment.map((t) => `/.well-known/oauth-protected-resource/t/${t}/mcp`) },
      { weight: 1, arbitrary: fc.array(pathSegment, { maxLength: 4 }).map((s) => `/${s.join("/")}`) },
    ),
    auth: fc.oneof(
      { weight: 6, arbitrary: fc.constant(`Bearer ${apiKey}`).map(() => `Bearer ${apiKey}`) },
      { weight: 1, arbitrary: fc.constant(undefined) },
      { weight: 2, arbitrary: latin1(60).map((s) => `Bearer ${s}`) },
      { weight: 1, arbitrary: latin1(60) },
    ),
    apiKeyHeader: optional(latin1(60)),
    session: fc.oneof(
      { weight: 4, arbitrary: fc.constant("valid") },
      { weight: 1, arbitrary: fc.constant("single") },
      { weight: 2, arbitrary: fc.constant(undefined) },
      { weight: 2, arbitrary: latin1(80) },
      { weight: 1, arbitrary: fc.constant("s".repeat(300)) },
    ),
    version: optional(
      fc.oneof(fc.constantFrom("2025-11-25", "2025-06-18", "2024-11-05", "2026-07-28"), latin1(20)),
    ),
    contentType: optional(
      fc.oneof(
        fc.constantFrom(
          "application/json",
          "application/json; charset=utf-8",
          "application/json; charset=latin1",
          "text/plain",
          "application/x-www-form-urlencoded",
          "multipart/form-data; boundary=x",
          "",
        ),
        latin1(40),
      ),
    ),
    accept: optional(
      fc.oneof(
        fc.constantFrom(
          "application/json, text/event-stream",
          "application/json",
          "text/event-stream",
          "*/*",
          "",
          "text/html",
        ),
        latin1(40),
      ),
    ),
    mcpMethod: optional(fc.oneof(fc.constantFrom(...KNOWN_METHODS), latin1(30))),
    mcpName: optional(fc.oneof(fc.constantFrom(...TOOL_NAMES), latin1(30))),
    origin: rarely(fc.oneof(fc.constantFrom("https://evil.example", "null"), latin1(30))),
    host: rarely(fc.constantFrom("evil.example", "localhost:1", "")),
    requestId: optional(latin1(200)),
    body: bodyArb,
    chunked: fc.boolean(),
  })
  .map((g) => {
    const headers: Record<string, string> = {};
    if (g.auth !== undefined) headers.authorization = g.auth;
    if (g.apiKeyHeader !== undefined) headers["x-api-key"] = g.apiKeyHeader;
    if (g.session === "valid") headers["mcp-session-id"] = sessionId;
    else if (g.session === "single") headers["mcp-session-id"] = singleSessionId;
    else if (g.session !== undefined) headers["mcp-session-id"] = g.session;
    if (g.version !== undefined) headers["mcp-protocol-version"] = g.version;
    if (g.contentType !== undefined) headers["content-type"] = g.contentType;
    if (g.accept !== undefined) headers.accept = g.accept;
    if (g.mcpMethod !== undefined) headers["mcp-method"] = g.mcpMethod;
    if (g.mcpName !== undefined) headers["mcp-name"] = g.mcpName;
    if (g.origin !== undefined) headers.origin = g.origin;
    if (g.host !== undefined) headers.host = g.host;
    if (g.requestId !== undefined) headers["x-request-id"] = g.requestId;
    return { method: g.method, path: g.path, headers, body: g.body, chunked: g.chunked };
  });

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------
function jsonMessages(res: Res): unknown[] | null {
  const ctype = String(res.headers["content-type"] ?? "");
  if (ctype.includes("text/event-stream")) {
    const out: unknown[] = [];
    for (const event of res.body.split(/\r?\n\r?\n/)) {
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n");
      if (!data.trim()) continue;
      try {
        out.push(JSON.parse(data));
      } catch {
        return null;
      }
    }
    return out;
  }
  try {
    const v = JSON.parse(res.body) as unknown;
    return Array.isArray(v) ? v : [v];
  } catch {
    return null;
  }
}

/** What is wrong with a gateway answer, or null. */
function gatewayProblem(req: Req, res: Res): string | null {
  if (res.status >= 500) return `HTTP ${res.status}`;
  if (req.method === "HEAD" || res.stream) return null;
  if (res.body.length === 0) {
    return res.status >= 400 ? `HTTP ${res.status} with an empty body, not a JSON-RPC error` : null;
  }
  const messages = jsonMessages(res);
  if (!messages) return `HTTP ${res.status}: body is not JSON-RPC`;
  let errors = 0;
  for (const m of messages) {
    const msg = m as {
      jsonrpc?: unknown;
      error?: { code?: unknown; message?: unknown; data?: { code?: unknown } };
    };
    if (msg?.error === undefined) continue;
    errors++;
    if (msg.jsonrpc !== "2.0") return "error without jsonrpc 2.0";
    if (typeof msg.error.code !== "number" || typeof msg.error.message !== "string")
      return "error without a numeric code and a message";
    if (typeof msg.error.data?.code !== "string" || !CATALOGUE.has(msg.error.data.code))
      return `error.data.code ${JSON.stringify(msg.error.data?.code)} is not in the catalogue`;
  }
  if (res.status >= 400 && errors === 0) return `HTTP ${res.status} without a JSON-RPC error`;
  return null;
}

/** Pages a person opens in a browser (reconnect links, the OAuth callback, the OpenAPI UI) answer in HTML. */
const BROWSER_PAGES = /^\/(?:v1\/oauth\/(?:connect|callback)|docs)(?:[/?]|$)/;

/** What is wrong with an API answer, or null. */
function apiProblem(req: Req, res: Res): string | null {
  if (res.status >= 500) return `HTTP ${res.status}`;
  if (req.method === "HEAD" || res.status < 400) return null;
  if (BROWSER_PAGES.test(req.path) && String(res.headers["content-type"] ?? "").startsWith("text/html"))
    return null;
  let body: { error?: { code?: unknown; message?: unknown } };
  try {
    body = JSON.parse(res.body) as typeof body;
  } catch {
    return `HTTP ${res.status}: body is not JSON`;
  }
  if (typeof body?.error?.code !== "string" || !CATALOGUE.has(body.error.code))
    return `error.code ${JSON.stringify(body?.error?.code)} is not in the catalogue`;
  if (typeof body.error.message !== "string" || body.error.message === "") return "error without a message";
  return null;
}

function describe_(req: Req, res: Res | Error): string {
  const sent = {
    ...req,
    body: req.body ? `${req.body.length} bytes: ${req.body.subarray(0, 300).toString("latin1")}` : undefined,
  };
  const got = res instanceof Error ? `no answer: ${res.message}` : `${res.status} ${res.body.slice(0, 400)}`;
  return `${JSON.stringify(sent)}\n→ ${got}`;
}

async function probe(base: string, req: Req, problem: (req: Req, res: Res) => string | null): Promise<void> {
  let res: Res;
  try {
    res = await send(base, req);
  } catch (err) {
    throw new Error(describe_(req, err as Error));
  }
  if (process.env.FUZZ_VERBOSE) console.log(describe_(req, res));
  const p = problem(req, res);
  if (p) throw new Error(`${p}\n${describe_(req, res)}`);
}

describe("fuzz", () => {
  it(`gateway: ${RUNS} generated requests, each answered with a JSON-RPC error from the catalogue or a result`, async () => {
    const base = stack.gateways[0]!.url;
    await fc.assert(
      fc.asyncProperty(gatewayReqArb, (req) => probe(base, req, gatewayProblem)),
      { numRuns: RUNS, seed: SEED, endOnFailure: false },
    );
    expect(stack.gateways[0]!.proc.running).toBe(true);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  }, 300_000);

  it(`API: ${RUNS} generated requests over the route table, each answered in the error shape or served`, async () => {
    const apiTokens = [`Bearer ${stack.adminToken}`];
    const tenantToken = await stack.admin.ok<{ token: string }>("POST", `/v1/tenants/${API_T}/tokens`, {
      name: "fuzz",
      role: "admin",
    });
    apiTokens.push(`Bearer ${tenantToken.token}`);
    const field = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.string({ maxLength: 40 }),
      fc.constantFrom("", "x".repeat(300), -1, 1e20),
    );
    const apiBody = fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .dictionary(
            fc.constantFrom(
              "name",
              "slug",
              "url",
              "transport",
              "role",
              "email",
              "defaultEffect",
              "rules",
              "document",
              "version",
              "principal",
              "tool",
              "upstream",
              "auth",
              "headers",
              "settings",
              "enabled",
              "expiresAt",
              "scopes",
              "clientId",
              "subject",
              "token",
              "query",
              "returnTo",
            ),
            field,
            { maxKeys: 6 },
          )
          .map((o) => Buffer.from(JSON.stringify(o))),
      },
      { weight: 3, arbitrary: bodyArb },
    );
    const apiReqArb: fc.Arbitrary<Req> = fc
      .record({
        route: fc.constantFrom(...routes),
        method: fc.oneof(
          { weight: 4, arbitrary: fc.constant(undefined) },
          { weight: 1, arbitrary: methodArb },
        ),
        tenant: fc.oneof(fc.constant(API_T), pathSegment),
        param: pathSegment,
        query: optional(
          fc.dictionary(
            fc.constantFrom(
              "limit",
              "cursor",
              "since",
              "until",
              "decision",
              "agent",
              "q",
              "ticket",
              "state",
              "code",
              "kind",
            ),
            fc.string({ maxLength: 30 }),
            { maxKeys: 4 },
          ),
        ),
        auth: fc.oneof(
          fc.constantFrom(...apiTokens, undefined),
          latin1(60).map((s) => `Bearer ${s}`),
        ),
        contentType: optional(
          fc.constantFrom(
            "application/json",
            "text/plain",
            "application/json; charset=latin1",
            "",
            "application/x-www-form-urlencoded",
          ),
        ),
        cookie: optional(latin1(80).map((s) => `gatehouse_session=${s}`)),
        body: apiBody,
        chunked: fc.boolean(),
      })
      .map((g) => {
        const path = g.route.path.replace(":tenant", g.tenant).replace(/:[A-Za-z0-9_]+/g, g.param);
        const qs = g.query ? `?${new URLSearchParams(g.query).toString()}` : "";
        const headers: Record<string, string> = {};
        if (g.auth) headers.authorization = g.auth;
        if (g.cookie) headers.cookie = g.cookie;
        if (g.contentType !== undefined) headers["content-type"] = g.contentType;
        else if (g.body) headers["content-type"] = "application/json";
        const method = g.method ?? g.route.method;
        return {
          method,
          path: `${path}${qs}`,
          headers,
          body: method === "GET" ? undefined : g.body,
          chunked: g.chunked,
        };
      });
    await fc.assert(
      fc.asyncProperty(apiReqArb, (req) => probe(stack.api.url, req, apiProblem)),
      { numRuns: RUNS, seed: SEED, endOnFailure: false },
    );
    expect(stack.api.proc.running).toBe(true);
    expect((await fetch(`${stack.api.url}/healthz`)).status).toBe(200);
  }, 300_000);
});
