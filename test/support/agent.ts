// The agent side: the official SDK clients (v1 for 2025-11-25, v2 pinned to 2026-07-28) and raw
// HTTP for what an SDK client would never send.
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from "@modelcontextprotocol/client";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  type ClientCapabilities,
  CreateMessageRequestSchema,
  type CreateMessageResult,
  ElicitRequestSchema,
  type ElicitResult,
  LATEST_PROTOCOL_VERSION,
  ListRootsRequestSchema,
  McpError,
} from "@modelcontextprotocol/sdk/types.js";

export interface AgentOptions {
  /** API key or JWT, sent as `Authorization: Bearer …`. */
  token?: string;
  headers?: Record<string, string>;
  /** Answer sampling/createMessage (declares the `sampling` capability). */
  onSampling?: (params: unknown) => Promise<CreateMessageResult> | CreateMessageResult;
  /** Answer elicitation/create (declares the `elicitation` capability). */
  onElicit?: (params: unknown) => Promise<ElicitResult> | ElicitResult;
  /** Answer roots/list (declares the `roots` capability). */
  roots?: Array<{ uri: string; name?: string }>;
  /** Reuse an existing session (no initialize): the failover case. */
  sessionId?: string;
  name?: string;
  /** Custom fetch (e.g. `roundRobinFetch`), as a load balancer in front of the nodes would be. */
  fetch?: (url: string | URL, init?: RequestInit) => Promise<Response>;
}

/**
 * A fetch that sends each request to the next of `origins` (`http://127.0.0.1:PORT`), keeping
 * path and query: a round-robin load balancer in front of the gateway nodes. `log` records
 * which origin served each method.
 */
export function roundRobinFetch(origins: string[], log: string[] = []) {
  let next = 0;
  return async (url: string | URL, init?: RequestInit): Promise<Response> => {
    const target = new URL(url.toString());
    const origin = new URL(origins[next++ % origins.length]!);
    target.protocol = origin.protocol;
    target.host = origin.host;
    log.push(`${init?.method ?? "GET"} ${origin.host}`);
    return fetch(target, init);
  };
}

export interface Agent {
  client: Client;
  transport: StreamableHTTPClientTransport;
  readonly sessionId: string | undefined;
  close(): Promise<void>;
}

function authHeaders(opts: { token?: string; headers?: Record<string, string> }): Record<string, string> {
  return { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...opts.headers };
}

/** An SDK v1 client (protocol 2025-11-25) connected to `url`. */
export async function connectAgent(url: string, opts: AgentOptions = {}): Promise<Agent> {
  const capabilities: ClientCapabilities = {};
  if (opts.onSampling) capabilities.sampling = {};
  if (opts.onElicit) capabilities.elicitation = {};
  if (opts.roots) capabilities.roots = { listChanged: true };
  const client = new Client({ name: opts.name ?? "gatehouse-e2e-agent", version: "1.0.0" }, { capabilities });
  const onSampling = opts.onSampling;
  if (onSampling) client.setRequestHandler(CreateMessageRequestSchema, async (req) => onSampling(req.params));
  const onElicit = opts.onElicit;
  if (onElicit) client.setRequestHandler(ElicitRequestSchema, async (req) => onElicit(req.params));
  const roots = opts.roots;
  if (roots) client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots }));
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: authHeaders(opts) },
    ...(opts.sessionId ? { sessionId: opts.sessionId } : {}),
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
  if (opts.sessionId) transport.setProtocolVersion(LATEST_PROTOCOL_VERSION);
  await client.connect(transport);
  return {
    client,
    transport,
    get sessionId() {
      return transport.sessionId;
    },
    close: async () => {
      await client.close().catch(() => {});
    },
  };
}

export interface ModernAgent {
  client: ModernClient;
  close(): Promise<void>;
}

/** An SDK v2 client pinned to protocol revision 2026-07-28 (stateless, `server/discover`). */
export async function connectModernAgent(
  url: string,
  opts: { token?: string; headers?: Record<string, string> } = {},
) {
  const client = new ModernClient(
    { name: "gatehouse-e2e-modern-agent", version: "1.0.0" },
    { versionNegotiation: { mode: { pin: "2026-07-28" } } },
  );
  const transport = new ModernTransport(new URL(url), { requestInit: { headers: authHeaders(opts) } });
  await client.connect(transport);
  return {
    client,
    close: async () => {
      await client.close().catch(() => {});
    },
  } satisfies ModernAgent;
}

/** The catalogue code (`error.data.code`) of a JSON-RPC error thrown by an SDK client, if any. */
export function errorData(
  err: unknown,
): { code?: string; ruleId?: string; [k: string]: unknown } | undefined {
  if (err instanceof McpError) return (err.data ?? undefined) as { code?: string };
  const data = (err as { data?: unknown })?.data;
  return data && typeof data === "object" ? (data as { code?: string }) : undefined;
}

/** Runs `fn`, expecting it to throw; returns the error. */
export async function expectThrows(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected an error, but the call succeeded");
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  /** JSON-RPC messages of the body (a JSON body, or the `data:` events of an SSE body). */
  messages: Array<Record<string, unknown>>;
}

/** Parses the JSON-RPC messages out of a JSON or SSE body. */
export function parseMessages(contentType: string | null, text: string): Array<Record<string, unknown>> {
  if (!text.trim()) return [];
  if (contentType?.includes("text/event-stream")) {
    const out: Array<Record<string, unknown>> = [];
    for (const event of text.split(/\r?\n\r?\n/)) {
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n");
      if (!data.trim()) continue;
      try {
        out.push(JSON.parse(data));
      } catch {}
    }
    return out;
  }
  try {
    const v = JSON.parse(text);
    return Array.isArray(v) ? v : [v];
  } catch {
    return [];
  }
}

export interface RawOptions {
  token?: string;
  sessionId?: string;
  protocolVersion?: string;
  headers?: Record<string, string>;
  method?: string;
}

/** One HTTP request to an MCP endpoint, as raw as it gets. */
export async function rawMcp(url: string, body: unknown, opts: RawOptions = {}): Promise<RawResponse> {
  const res = await fetch(url, {
    method: opts.method ?? "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      ...(opts.sessionId ? { "mcp-session-id": opts.sessionId } : {}),
      ...(opts.protocolVersion ? { "mcp-protocol-version": opts.protocolVersion } : {}),
      ...opts.headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    messages: parseMessages(res.headers.get("content-type"), text),
  };
}

/** `initialize` + `notifications/initialized` over raw HTTP; returns the session id. */
export async function rawInitialize(
  url: string,
  opts: RawOptions = {},
): Promise<{ sessionId: string; res: RawResponse }> {
  const res = await rawMcp(
    url,
    {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "gatehouse-e2e-raw", version: "1.0.0" },
      },
    },
    opts,
  );
  const sessionId = res.headers.get("mcp-session-id");
  if (res.status !== 200 || !sessionId) {
    throw new Error(
      `initialize failed: HTTP ${res.status} session=${sessionId} body=${res.text.slice(0, 500)}`,
    );
  }
  const ack = await rawMcp(
    url,
    { jsonrpc: "2.0", method: "notifications/initialized" },
    { ...opts, sessionId, protocolVersion: "2025-11-25" },
  );
  if (ack.status !== 202)
    throw new Error(`notifications/initialized: HTTP ${ack.status} ${ack.text.slice(0, 300)}`);
  return { sessionId, res };
}

/** The text of the first text content item of a tool result. */
export function firstText(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> })?.content ?? [];
  const t = content.find((c) => c.type === "text");
  return t?.text ?? "";
}
