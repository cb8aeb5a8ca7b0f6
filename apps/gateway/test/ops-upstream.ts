// A small MCP upstream over Streamable HTTP written against the wire format (2025-11-25), for the
// operations tests: it answers plain JSON, can be told to fail every call with HTTP 500, and
// records the headers of each tools/call it receives (trace context).
import { randomUUID } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface OpsUpstream {
  url: string;
  /** While true, every tools/call is answered HTTP 500. */
  failing: boolean;
  /** Headers of every tools/call received, in order. */
  callHeaders: IncomingHttpHeaders[];
  /** tools/call requests received (including failed ones). */
  calls: number;
  close(): Promise<void>;
}

const TOOLS = [
  {
    name: "echo",
    description: "Echoes text",
    inputSchema: { type: "object", properties: { text: { type: "string" } } },
  },
  {
    name: "slow",
    description: "Answers after `ms` milliseconds",
    inputSchema: { type: "object", properties: { ms: { type: "number" } } },
  },
];

export async function startOpsUpstream(): Promise<OpsUpstream> {
  const sessions = new Set<string>();
  const state: OpsUpstream = {
    url: "",
    failing: false,
    callHeaders: [],
    calls: 0,
    close: async () => {},
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(JSON.stringify(body));
      };
      if (req.method === "DELETE") {
        sessions.delete(String(req.headers["mcp-session-id"]));
        res.writeHead(200).end();
        return;
      }
      if (req.method !== "POST") {
        res.writeHead(405, { allow: "POST, DELETE" }).end();
        return;
      }
      let msg: { id?: unknown; method?: string; params?: Record<string, unknown> };
      try {
        msg = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        json(400, { jsonrpc: "2.0", id: null, error: { code: -32700, message: "parse error" } });
        return;
      }
      if (msg.method === "initialize") {
        const sid = randomUUID();
        sessions.add(sid);
        json(
          200,
          {
            jsonrpc: "2.0",
            id: msg.id,
            result: {
              protocolVersion: "2025-11-25",
              capabilities: { tools: {} },
              serverInfo: { name: "ops-upstream", version: "1.0.0" },
            },
          },
          { "mcp-session-id": sid },
        );
        return;
      }
      const sid = req.headers["mcp-session-id"];
      if (typeof sid !== "string" || !sessions.has(sid)) {
        json(404, {
          jsonrpc: "2.0",
          id: msg.id ?? null,
          error: { code: -32001, message: "Session not found" },
        });
        return;
      }
      if (msg.id === undefined) {
        res.writeHead(202).end();
        return;
      }
      if (msg.method === "tools/list") {
        json(200, { jsonrpc: "2.0", id: msg.id, result: { tools: TOOLS } });
        return;
      }
      if (msg.method === "tools/call") {
        state.calls++;
        state.callHeaders.push(req.headers);
        if (state.failing) {
          res.writeHead(500, { "content-type": "text/plain" }).end("upstream broke");
          return;
        }
        const args = (msg.params?.arguments ?? {}) as Record<string, unknown>;
        const answer = () =>
          json(200, {
            jsonrpc: "2.0",
            id: msg.id,
            result: { content: [{ type: "text", text: `echo:${String(args.text ?? args.ms ?? "")}` }] },
          });
        if (msg.params?.name === "slow") setTimeout(answer, Number(args.ms ?? 100));
        else answer();
        return;
      }
      if (msg.method === "ping") {
        json(200, { jsonrpc: "2.0", id: msg.id, result: {} });
        return;
      }
      json(200, { jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "Method not found" } });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  state.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return state;
}
