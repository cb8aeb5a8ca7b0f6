// The plain HTTP link against real upstreams: the v1 SDK server answering as SSE (progress,
// logging, a server-to-client request on the response stream) and a JSON-only upstream.
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { AppError, type UpstreamSnapshot } from "@gatehouse/shared";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { EmptyResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type OpsUpstream, startOpsUpstream } from "../../test/ops-upstream.js";
import { HttpEndpoint, HttpLink, SseEventTooLarge, SseReader, UpstreamHttpError } from "./http-session.js";
import { isSessionGone } from "./upstream-client.js";

let sdk: { url: string; close(): Promise<void>; cancelled: string[]; forget(): void };
let plain: OpsUpstream;

function snapshot(url: string): UpstreamSnapshot {
  return {
    id: randomUUID(),
    name: "up",
    description: null,
    url,
    transport: "streamable-http",
    command: null,
    args: [],
    envSealed: null,
    toolPrefix: "up_",
    headersSealed: null,
    authMode: "none",
    authConfig: {},
    authSecretSealed: null,
    enabled: true,
    timeoutMs: null,
  };
}

async function startSdkUpstream() {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const cancelled: string[] = [];
  const build = () => {
    const server = new McpServer({ name: "sdk-up", version: "1" }, { capabilities: { logging: {} } });
    server.registerTool(
      "work",
      { description: "progress + log", inputSchema: { steps: z.number() } },
      async ({ steps }, extra) => {
        for (let i = 1; i <= steps; i++) {
          if (extra._meta?.progressToken !== undefined)
            await extra.sendNotification({
              method: "notifications/progress",
              params: { progressToken: extra._meta.progressToken, progress: i, total: steps },
            });
        }
        await extra.sendNotification({
          method: "notifications/message",
          params: { level: "info", data: "hi" },
        });
        return { content: [{ type: "text", text: `worked ${steps}` }] };
      },
    );
    server.registerTool("hang", { description: "never answers", inputSchema: {} }, async (_a, extra) => {
      await new Promise<void>((resolve) =>
        extra.signal.addEventListener("abort", () => {
          cancelled.push(String(extra.requestId));
          resolve();
        }),
      );
      return { content: [] };
    });
    server.registerTool(
      "ask",
      { description: "pings the client mid-call", inputSchema: {} },
      async (_a, extra) => {
        const r = await extra.sendRequest({ method: "ping" }, EmptyResultSchema);
        return { content: [{ type: "text", text: `pong ${JSON.stringify(r)}` }] };
      },
    );
    return server;
  };
  const http: Server = createServer(async (req, res) => {
    const sid = req.headers["mcp-session-id"];
    if (typeof sid === "string") {
      const t = transports.get(sid);
      if (!t) {
        res.writeHead(404).end();
        return;
      }
      await t.handleRequest(req, res);
      return;
    }
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        transports.set(id, transport);
      },
    });
    await build().connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    cancelled,
    forget: () => transports.clear(),
    close: async () => {
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

beforeAll(async () => {
  sdk = await startSdkUpstream();
  plain = await startOpsUpstream();
});

afterAll(async () => {
  await sdk?.close();
  await plain?.close();
});

describe("HttpLink", () => {
  it("initializes, relays progress and notifications from an SSE answer, and resumes on another link", async () => {
    const endpoint = new HttpEndpoint(snapshot(sdk.url), { "x-static": "1" });
    const notes: string[] = [];
    const link = await HttpLink.open(
      endpoint,
      { onNotification: (m) => notes.push(m) },
      { name: "t", version: "1" },
      2000,
    );
    expect(link.serverCapabilities()).toHaveProperty("logging");
    const progress: number[] = [];
    const result = await link.request(
      "tools/call",
      { name: "work", arguments: { steps: 3 } },
      { onprogress: (p) => progress.push(Number(p.progress)) },
    );
    expect(result).toMatchObject({ content: [{ type: "text", text: "worked 3" }] });
    expect(progress).toEqual([1, 2, 3]);
    expect(notes).toContain("notifications/message");
    // Another node resumes the same upstream session from the record alone.
    const again = HttpLink.resume(endpoint, {}, link.ref());
    expect(again.resumed).toBe(true);
    expect(await again.request("tools/call", { name: "work", arguments: { steps: 1 } })).toMatchObject({
      content: [{ text: "worked 1" }],
    });
    await link.close({ terminate: true });
    const gone = await again.request("tools/call", { name: "work", arguments: { steps: 1 } }).catch((e) => e);
    expect(gone).toBeInstanceOf(UpstreamHttpError);
    expect(isSessionGone(gone, true)).toBe(true);
    endpoint.close();
  });

  it("answers a server-to-client request on the response stream with a POST (ping)", async () => {
    const endpoint = new HttpEndpoint(snapshot(sdk.url), {});
    const link = await HttpLink.open(endpoint, {}, { name: "t", version: "1" }, 2000);
    const r = await link.request("tools/call", { name: "ask", arguments: {} });
    expect(r).toMatchObject({ content: [{ text: "pong {}" }] });
    endpoint.close();
  });

  it("times out with TIMEOUT and tells the upstream the request is cancelled; a caller abort does the same", async () => {
    const endpoint = new HttpEndpoint(snapshot(sdk.url), {});
    const link = await HttpLink.open(endpoint, {}, { name: "t", version: "1" }, 2000);
    const err = await link
      .request("tools/call", { name: "hang", arguments: {} }, { timeout: 150 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe("TIMEOUT");
    const abort = new AbortController();
    const p = link
      .request("tools/call", { name: "hang", arguments: {} }, { signal: abort.signal })
      .catch((e) => e);
    setTimeout(() => abort.abort(), 100);
    expect(((await p) as Error).name).toBe("AbortError");
    await expect.poll(() => sdk.cancelled.length, { timeout: 3000 }).toBe(2);
    endpoint.close();
  });

  it("keeps the upstream's JSON-RPC errors (code and data) and maps HTTP failures by status", async () => {
    const endpoint = new HttpEndpoint(snapshot(plain.url), {});
    const link = await HttpLink.open(endpoint, {}, { name: "t", version: "1" }, 2000);
    const rpc = await link.request("nope/method", {}).catch((e) => e);
    expect(rpc).toBeInstanceOf(AppError);
    expect((rpc as AppError & { jsonRpcCode?: number }).jsonRpcCode).toBe(-32601);
    plain.failing = true;
    try {
      const http = await link
        .request("tools/call", { name: "echo", arguments: { text: "x" } })
        .catch((e) => e);
      expect(http).toBeInstanceOf(UpstreamHttpError);
      expect((http as UpstreamHttpError).status).toBe(500);
    } finally {
      plain.failing = false;
    }
    // Static headers go upstream.
    const seen = plain.callHeaders.length;
    const withHeaders = await HttpLink.open(
      new HttpEndpoint(snapshot(plain.url), { authorization: "Bearer upstream-secret" }),
      {},
      { name: "t", version: "1" },
      2000,
    );
    await withHeaders.request("tools/call", { name: "echo", arguments: { text: "h" } });
    expect(plain.callHeaders[seen]?.authorization).toBe("Bearer upstream-secret");
    endpoint.close();
  });
});

describe("SseReader (incremental event-stream parsing)", () => {
  const read = (chunks: string[], max = 1024): string[] => {
    const out: string[] = [];
    const r = new SseReader(max, (d) => out.push(d));
    for (const c of chunks) r.push(Buffer.from(c));
    return out;
  };

  it("splits events on any line ending, across chunk boundaries, joining data lines", () => {
    const text =
      'event: message\r\ndata: {"a":1}\r\n\r\n: comment\ndata:x\ndata\ndata: y\n\ndata: z\r\rid: 3\ndata: w\n';
    const whole = read([text]);
    expect(whole).toEqual(['{"a":1}', "x\n\ny", "z"]);
    // Every split point, including between CR and LF, gives the same events.
    for (let i = 1; i < text.length; i++) expect(read([text.slice(0, i), text.slice(i)])).toEqual(whole);
    expect(read(text.split(""))).toEqual(whole);
  });

  it("decodes multi-byte characters split across chunks", () => {
    const bytes = Buffer.from("data: héllo ✓\n\n");
    const out: string[] = [];
    const r = new SseReader(1024, (d) => out.push(d));
    for (const b of bytes) r.push(Buffer.from([b]));
    expect(out).toEqual(["héllo ✓"]);
  });

  it("throws once one event outgrows the cap, whether its line ended or not", () => {
    expect(() => read(["data: ", "x".repeat(2000)], 1000)).toThrow(SseEventTooLarge);
    expect(() => read([`data: ${"x".repeat(600)}\n`, `data: ${"x".repeat(600)}\n`], 1000)).toThrow(
      SseEventTooLarge,
    );
    // Many small events are fine: the cap is per event.
    expect(
      read(
        Array.from({ length: 50 }, () => `data: ${"x".repeat(100)}\n\n`),
        1000,
      ),
    ).toHaveLength(50);
  });
});
