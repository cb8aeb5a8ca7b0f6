// Real MCP upstreams for the gateway's integration tests, built with the v1 SDK server over
// Streamable HTTP on 127.0.0.1 (stateful: one transport per upstream session).
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";

export interface Fixture {
  name: string;
  url: string;
  /** Requests seen, by upstream session id: lets tests check which session served a call. */
  sessionsSeen: Set<string>;
  /** Upstream session id of every echo call, in order. */
  echoSessions: string[];
  /** Authorization headers the upstream received (the agent's must never appear). */
  authHeaders: string[];
  /** Every request's headers, in order: lets tests check what the gateway sent upstream. */
  requestHeaders: IncomingHttpHeaders[];
  /** Every call of the `slow` tool: how far it got and how it ended. */
  slowRuns: SlowRun[];
  /** Forgets every upstream session, as a restarted server would. */
  forgetSessions(): void;
  /** Adds a tool and announces notifications/tools/list_changed on every session. */
  addTool(name: string): void;
  close(): Promise<void>;
}

export interface SlowRun {
  steps: number;
  done: number;
  /** Ran every step and answered. */
  finished: boolean;
  /** The request was cancelled (notifications/cancelled reached the upstream) before it finished. */
  cancelled: boolean;
}

export async function startFixture(name: string): Promise<Fixture> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const servers = new Set<McpServer>();
  const sessionsSeen = new Set<string>();
  const authHeaders: string[] = [];
  const requestHeaders: IncomingHttpHeaders[] = [];
  const slowRuns: SlowRun[] = [];
  const extraTools: string[] = [];
  const echoSessions: string[] = [];

  const build = (): McpServer => {
    const server = new McpServer(
      { name: `fixture-${name}`, version: "1.0.0" },
      { capabilities: { logging: {} } },
    );
    server.registerTool(
      "echo",
      { description: "Echoes text", inputSchema: { text: z.string() } },
      async ({ text }, extra) => {
        echoSessions.push(extra.sessionId ?? "");
        return { content: [{ type: "text", text: `${name}:echo:${text}` }] };
      },
    );
    server.registerTool("get_secret", { description: "A secret", inputSchema: {} }, async () => ({
      content: [{ type: "text", text: `${name}-secret` }],
    }));
    server.registerTool(
      "drop_table",
      { description: "Destructive", inputSchema: { table: z.string() } },
      async ({ table }) => ({ content: [{ type: "text", text: `dropped ${table}` }] }),
    );
    server.registerTool(
      "slow",
      { description: "Reports progress", inputSchema: { steps: z.number().optional() } },
      async ({ steps }, extra) => {
        const n = steps ?? 3;
        const run: SlowRun = { steps: n, done: 0, finished: false, cancelled: false };
        slowRuns.push(run);
        const token = extra._meta?.progressToken;
        for (let i = 1; i <= n; i++) {
          if (extra.signal.aborted) {
            run.cancelled = true;
            return { content: [{ type: "text", text: `cancelled after ${run.done}` }] };
          }
          if (token !== undefined) {
            await extra.sendNotification({
              method: "notifications/progress",
              params: { progressToken: token, progress: i, total: n, message: `step ${i}` },
            });
          }
          await new Promise((r) => setTimeout(r, 20));
          run.done = i;
        }
        run.finished = true;
        return { content: [{ type: "text", text: `done ${n}` }] };
      },
    );
    server.registerTool(
      "delete_note",
      { description: "Not for readers", inputSchema: { id: z.string() } },
      async ({ id }) => ({ content: [{ type: "text", text: `deleted ${id}` }] }),
    );
    server.registerTool(
      "ask_user",
      { description: "Elicits", inputSchema: { message: z.string() } },
      async ({ message }) => {
        const r = await server.server.elicitInput({
          message,
          requestedSchema: {
            type: "object",
            properties: { answer: { type: "string" } },
            required: ["answer"],
          },
        });
        return { content: [{ type: "text", text: `${r.action}:${JSON.stringify(r.content ?? {})}` }] };
      },
    );
    server.registerTool("log_something", { description: "Logs", inputSchema: {} }, async (_a, extra) => {
      await extra.sendNotification({
        method: "notifications/message",
        params: { level: "info", data: `${name} logged` },
      });
      return { content: [{ type: "text", text: "logged" }] };
    });
    for (const t of extraTools) {
      server.registerTool(t, { description: "added", inputSchema: {} }, async () => ({
        content: [{ type: "text", text: t }],
      }));
    }
    server.registerPrompt(
      "greet",
      { description: "Greets", argsSchema: { who: z.string() } },
      async ({ who }) => ({
        messages: [{ role: "user", content: { type: "text", text: `Hello ${who} from ${name}` } }],
      }),
    );
    // Prompt errors reach the client as JSON-RPC errors (tool errors become isError results).
    server.registerPrompt("broken", { description: "Always fails" }, async () => {
      throw new McpError(-32050, `${name} has no prompt today`, { reason: "closed" });
    });
    server.registerResource("info", `${name}://info`, { mimeType: "text/plain" }, async (uri) => ({
      contents: [{ uri: uri.href, text: `info of ${name}` }],
    }));
    servers.add(server);
    return server;
  };

  const http: Server = createServer(async (req, res) => {
    requestHeaders.push(req.headers);
    if (typeof req.headers.authorization === "string") authHeaders.push(req.headers.authorization);
    const sid = req.headers["mcp-session-id"];
    if (typeof sid === "string") {
      const t = transports.get(sid);
      if (!t) {
        res.writeHead(404, { "content-type": "application/json" });
        res.end(
          JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32001, message: "Session not found" } }),
        );
        return;
      }
      sessionsSeen.add(sid);
      await t.handleRequest(req, res);
      return;
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        transports.set(id, transport);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) transports.delete(transport.sessionId);
    };
    await build().connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  const port = (http.address() as AddressInfo).port;
  return {
    name,
    url: `http://127.0.0.1:${port}/mcp`,
    sessionsSeen,
    echoSessions,
    authHeaders,
    requestHeaders,
    slowRuns,
    forgetSessions() {
      transports.clear();
    },
    addTool(tool: string) {
      extraTools.push(tool);
      for (const s of servers) {
        if (!s.isConnected()) continue;
        s.registerTool(tool, { description: "added", inputSchema: {} }, async () => ({
          content: [{ type: "text", text: tool }],
        }));
      }
    },
    async close() {
      for (const t of transports.values()) await t.close().catch(() => {});
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

/** test/fixtures/hostile-server.mjs (see its header): an upstream that breaks the gateway's limits. */
export const HOSTILE_SCRIPT = fileURLToPath(
  new URL("../../../test/fixtures/hostile-server.mjs", import.meta.url),
);

export interface HostileFixture {
  url: string;
  stats(): Promise<{ endlessOpen: number; endlessClosed: number; endlessBytes: number }>;
  close(): Promise<void>;
}

/** Runs the hostile upstream in its own process (its floods must not share the gateway's event loop). */
export async function startHostileFixture(): Promise<HostileFixture> {
  const child = spawn(process.execPath, [HOSTILE_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once("exit", (code) => reject(new Error(`hostile fixture exited (${code})`)));
  });
  const base = `http://127.0.0.1:${port}`;
  return {
    url: `${base}/mcp`,
    async stats() {
      return (await (await fetch(`${base}/stats`)).json()) as {
        endlessOpen: number;
        endlessClosed: number;
        endlessBytes: number;
      };
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
