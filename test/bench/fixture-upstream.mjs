#!/usr/bin/env node
// The benchmark's upstream: the MCP SDK (v1 low-level Server) with one tool, `echo {text}`,
// doing as little as possible so the numbers measure what sits in front of it.
//
//   node test/bench/fixture-upstream.mjs --port 0        streamable HTTP on 127.0.0.1:<port>/mcp
//   node test/bench/fixture-upstream.mjs --stdio         stdio
//   --sse   answer POSTs with an SSE stream instead of a JSON body (the SDK's default)
//
// HTTP mode is stateful (Mcp-Session-Id, one SDK Server per session, as the SDK requires) and
// prints `listening <port>` on stdout once bound.
import { randomUUID } from "node:crypto";
import http from "node:http";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const option = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
};

const TOOLS = [
  {
    name: "echo",
    description: "Echoes its text argument",
    inputSchema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
  },
];

function makeServer() {
  const server = new Server({ name: "bench-fixture", version: "1.0.0" }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    if (request.params.name !== "echo") throw new Error(`unknown tool ${request.params.name}`);
    return { content: [{ type: "text", text: String(request.params.arguments?.text ?? "") }] };
  });
  return server;
}

if (flag("stdio")) {
  await makeServer().connect(new StdioServerTransport());
} else {
  const json = !flag("sse");
  /** @type {Map<string, StreamableHTTPServerTransport>} */
  const sessions = new Map();

  const readBody = (req) =>
    new Promise((resolve, reject) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => resolve(Buffer.concat(chunks)));
      req.on("error", reject);
    });

  // Works around modelcontextprotocol/typescript-sdk#2559 (SDK 1.32.2): in JSON-response mode the
  // transport resolves each POST's JSON answer but never runs that stream's cleanup, so every call
  // leaves one `_streamMapping` entry (~8-10 KB) behind and the fixture grows without bound (73 MB
  // → 2.3 GB in one bench run), slowing whatever runs after it. Once a POST has been answered, drop
  // the JSON streams that no pending request points at any more. Remove when a fixed SDK is pinned.
  const releaseAnsweredJsonStreams = (transport) => {
    const inner = transport._webStandardTransport;
    if (!inner?._streamMapping || !inner._requestToStreamMapping) return;
    const pending = new Set(inner._requestToStreamMapping.values());
    for (const [streamId, stream] of inner._streamMapping) {
      if (stream.resolveJson && !pending.has(streamId)) inner._streamMapping.delete(streamId);
    }
  };

  const httpServer = http.createServer(async (req, res) => {
    try {
      if (!req.url?.startsWith("/mcp")) {
        res.writeHead(404).end();
        return;
      }
      const sessionId = req.headers["mcp-session-id"];
      let transport = typeof sessionId === "string" ? sessions.get(sessionId) : undefined;
      let body;
      if (req.method === "POST") {
        const raw = await readBody(req);
        body = raw.length ? JSON.parse(raw.toString("utf8")) : undefined;
      }
      if (!transport) {
        if (sessionId !== undefined || req.method !== "POST" || body?.method !== "initialize") {
          res.writeHead(sessionId ? 404 : 400, { "content-type": "application/json" });
          res.end(
            JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32000, message: "no such session" } }),
          );
          return;
        }
        transport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          enableJsonResponse: json,
          onsessioninitialized: (id) => sessions.set(id, transport),
        });
        transport.onclose = () => {
          if (transport.sessionId) sessions.delete(transport.sessionId);
        };
        await makeServer().connect(transport);
      }
      await transport.handleRequest(req, res, body);
      if (json) releaseAnsweredJsonStreams(transport);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(String(err?.message ?? err));
    }
  });
  httpServer.keepAliveTimeout = 60_000;
  httpServer.listen(Number(option("port", "0")), "127.0.0.1", () => {
    process.stdout.write(`listening ${httpServer.address().port}\n`);
  });
  const stop = () => httpServer.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
