// The per-session upstream link for the common case, spoken over node:http directly.
//
// Why not the SDK client here: the first benchmark (test/bench/RESULTS.md, 2026-11-21 09:32) put
// the gateway at 27% of a bare proxy's throughput with ~900 µs of CPU per call, most of it in the
// v2 client's HTTP transport (undici fetch, an AbortSignal and a body stream per request, response
// cloning, zod validation of every message), and ~104 KB per agent session that had made a call
// (one SDK Client + transport + its GET stream per session). This link is a plain object per
// session (ids and versions) over one keep-alive agent per upstream: results are relayed, not
// re-validated (the agent's own client validates them), and nothing is held open per session.
//
// It speaks MCP Streamable HTTP (2025-11-25, "Transports") to 2025-era upstreams: POST with
// `Mcp-Session-Id` and `MCP-Protocol-Version`, answers as JSON or as an SSE stream scoped to the
// request (progress, logging and other notifications on the way are handed to the session;
// server-to-client requests are relayed through `onRequest` and answered with a POST). It opens
// no GET stream, so it is used only for sessions that need none: no sampling, elicitation or roots
// to relay and no resource subscriptions (`UpstreamManager.canUseHttpLink`). Everything else
// (2026-07-28 upstreams, SSE and stdio transports, OAuth upstreams) stays on the SDK client.
import http from "node:http";
import https from "node:https";
import { AppError, ErrorCode, type UpstreamSnapshot } from "@gatehouse/shared";
import type { UpstreamSessionRef } from "../sessions/session-store.js";
import type { LinkRequestOptions, UpstreamHandlers, UpstreamLink } from "./upstream-client.js";

type Json = Record<string, unknown>;

/** An HTTP status from the upstream that is not an MCP answer (mapped like the SDK's SdkHttpError). */
export class UpstreamHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "UpstreamHttpError";
  }
}

/** The upstream answered a JSON-RPC error: UPSTREAM_ERROR, keeping its code and data for the agent. */
export function upstreamRpcError(
  u: UpstreamSnapshot,
  code: unknown,
  message: unknown,
  data: unknown,
): AppError {
  const extra = data && typeof data === "object" && !Array.isArray(data) ? (data as Json) : {};
  const e = new AppError(ErrorCode.UPSTREAM_ERROR, String(message ?? "error"), {
    ...extra,
    upstream: u.name,
  });
  if (typeof code === "number") (e as AppError & { jsonRpcCode?: number }).jsonRpcCode = code;
  return e;
}

/** One upstream's endpoint: URL, static headers and the keep-alive agent every session shares. */
export class HttpEndpoint {
  readonly url: URL;
  private readonly agent: http.Agent;
  private readonly lib: typeof http | typeof https;

  constructor(
    readonly upstream: UpstreamSnapshot,
    /** Static headers (unsealed): never the agent's own credentials. */
    readonly headers: Record<string, string>,
  ) {
    this.url = new URL(upstream.url ?? "");
    this.lib = this.url.protocol === "https:" ? https : http;
    // Connections are reused across sessions and calls (the SDK's fetch kept them too, but paid
    // per request for the rest); LIFO keeps few sockets warm.
    this.agent = new this.lib.Agent({
      keepAlive: true,
      maxSockets: 512,
      maxFreeSockets: 64,
      scheduling: "lifo",
    });
  }

  close(): void {
    this.agent.destroy();
  }

  /** Streamable HTTP "Session Management": DELETE ends an upstream session (best effort, 2 s). */
  terminate(session: { sessionId?: string; protocolVersion?: string }): Promise<void> {
    return new Promise<void>((resolve) => {
      const headers: Record<string, string> = { ...this.headers };
      if (session.sessionId) headers["mcp-session-id"] = session.sessionId;
      if (session.protocolVersion) headers["mcp-protocol-version"] = session.protocolVersion;
      const req = this.lib.request(
        this.url,
        { method: "DELETE", headers, agent: this.agent, timeout: 2000 },
        (res) => {
          res.resume();
          res.on("end", () => resolve());
          res.on("error", () => resolve());
        },
      );
      req.on("error", () => resolve());
      req.on("timeout", () => req.destroy());
      req.end();
    });
  }

  /**
   * POSTs one JSON-RPC message. `onMessage` gets every message of an SSE answer; the promise
   * resolves with the status and, for a JSON answer, the parsed body.
   */
  post(
    body: string,
    session: { sessionId?: string; protocolVersion?: string },
    opts: {
      signal?: AbortSignal;
      /** Filled with a function that aborts the request (cheaper than an AbortSignal per call). */
      control?: { abort?: () => void };
      headers?: Record<string, string>;
      onMessage?: (m: Json) => boolean | undefined;
    } = {},
  ): Promise<{ status: number; sessionId: string | undefined; json: Json | null }> {
    const attempt = (retry: boolean) =>
      new Promise<{ status: number; sessionId: string | undefined; json: Json | null }>((resolve, reject) => {
        const headers: Record<string, string | number> = {
          ...this.headers,
          ...opts.headers,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "content-length": Buffer.byteLength(body),
        };
        if (session.sessionId) headers["mcp-session-id"] = session.sessionId;
        if (session.protocolVersion) headers["mcp-protocol-version"] = session.protocolVersion;
        let settled = false;
        let got = false;
        const req = this.lib.request(
          {
            protocol: this.url.protocol,
            hostname: this.url.hostname,
            port: this.url.port,
            path: this.url.pathname + this.url.search,
            method: "POST",
            headers,
            agent: this.agent,
          },
          (res) => {
            got = true;
            const status = res.statusCode ?? 0;
            const sid = res.headers["mcp-session-id"];
            const sessionId = typeof sid === "string" ? sid : undefined;
            const type = String(res.headers["content-type"] ?? "");
            res.setEncoding("utf8");
            if (status >= 200 && status < 300 && type.includes("text/event-stream")) {
              let buf = "";
              let done = false;
              res.on("data", (chunk: string) => {
                buf += chunk;
                let end = eventEnd(buf);
                while (end) {
                  const event = buf.slice(0, end.at);
                  buf = buf.slice(end.at + end.length);
                  const data = eventData(event);
                  if (data) {
                    try {
                      if (opts.onMessage?.(JSON.parse(data) as Json)) done = true;
                    } catch {
                      // a malformed event is skipped, as the SDK does
                    }
                  }
                  end = eventEnd(buf);
                }
                // The answer is in: the rest of the stream (if any) is not ours to wait for.
                if (done && !settled) {
                  settled = true;
                  resolve({ status, sessionId, json: null });
                  res.destroy();
                }
              });
              res.on("end", () => {
                if (settled) return;
                settled = true;
                resolve({ status, sessionId, json: null });
              });
              res.on("error", (err) => {
                if (settled) return;
                settled = true;
                reject(err);
              });
              return;
            }
            let text = "";
            res.on("data", (chunk: string) => {
              text += chunk;
            });
            res.on("end", () => {
              if (settled) return;
              settled = true;
              let json: Json | null = null;
              if (type.includes("application/json") && text) {
                try {
                  json = JSON.parse(text) as Json;
                } catch {
                  json = null;
                }
              }
              resolve({ status, sessionId, json });
            });
            res.on("error", (err) => {
              if (settled) return;
              settled = true;
              reject(err);
            });
          },
        );
        req.on("error", (err: NodeJS.ErrnoException) => {
          if (settled) return;
          settled = true;
          // The upstream closed an idle keep-alive socket as we reused it: nothing was processed,
          // send again once on a fresh connection (what undici does for this race too).
          if (retry && !got && req.reusedSocket && err.code === "ECONNRESET") {
            attempt(false).then(resolve, reject);
            return;
          }
          reject(err);
        });
        if (opts.control) opts.control.abort = () => req.destroy(abortError());
        if (opts.signal) {
          if (opts.signal.aborted) {
            req.destroy(abortError());
          } else {
            const onAbort = () => req.destroy(abortError());
            opts.signal.addEventListener("abort", onAbort, { once: true });
            req.on("close", () => opts.signal?.removeEventListener("abort", onAbort));
          }
        }
        req.end(body);
      });
    return attempt(true);
  }
}

function abortError(): Error {
  const e = new Error("The request was aborted");
  e.name = "AbortError";
  return e;
}

/** End of the first SSE event in `buf` (blank line, any of the three line endings), if complete. */
function eventEnd(buf: string): { at: number; length: number } | null {
  const candidates = [
    { at: buf.indexOf("\n\n"), length: 2 },
    { at: buf.indexOf("\r\n\r\n"), length: 4 },
    { at: buf.indexOf("\r\r"), length: 2 },
  ].filter((c) => c.at >= 0);
  if (candidates.length === 0) return null;
  return candidates.reduce((a, b) => (b.at < a.at ? b : a));
}

/** The `data:` lines of one SSE event, joined (WHATWG "Server-sent events", event stream interpretation). */
function eventData(event: string): string {
  let data = "";
  let first = true;
  for (const line of event.split(/\r\n|\r|\n/)) {
    if (!line.startsWith("data")) continue;
    if (line !== "data" && line[4] !== ":") continue;
    let v = line.slice(5);
    if (v.startsWith(" ")) v = v.slice(1);
    data = first ? v : `${data}\n${v}`;
    first = false;
  }
  return data;
}

const LEGACY_VERSION = "2025-11-25";

/** An upstream session of one agent session, over `HttpEndpoint`. */
export class HttpLink implements UpstreamLink {
  readonly kind = "http" as const;
  readonly resumed: boolean;
  lastUsedAt = Date.now();
  private closed = false;
  private counter = 0;
  private caps: Json;

  constructor(
    readonly endpoint: HttpEndpoint,
    private readonly handlers: UpstreamHandlers,
    private sessionId: string | undefined,
    private protocolVersion: string,
    capabilities: Json,
    resumed: boolean,
  ) {
    this.caps = capabilities;
    this.resumed = resumed;
  }

  get upstream(): UpstreamSnapshot {
    return this.endpoint.upstream;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Lifecycle "Initialization": initialize, then notifications/initialized; no GET stream. */
  static async open(
    endpoint: HttpEndpoint,
    handlers: UpstreamHandlers,
    clientInfo: Json,
    timeoutMs: number,
  ): Promise<HttpLink> {
    const signal = AbortSignal.timeout(timeoutMs);
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: { protocolVersion: LEGACY_VERSION, capabilities: {}, clientInfo },
    });
    let answer: Json | null = null;
    const r = await endpoint.post(
      body,
      {},
      {
        signal,
        onMessage: (m) => {
          if (m.id === 0 && ("result" in m || "error" in m)) {
            answer = m;
            return true;
          }
          return false;
        },
      },
    );
    answer ??= r.json;
    if (r.status >= 400) throw new UpstreamHttpError(r.status, `HTTP ${r.status} to initialize`);
    const result = (answer as Json | null)?.result as Json | undefined;
    if (!result || typeof result.protocolVersion !== "string") {
      const err = (answer as Json | null)?.error as Json | undefined;
      throw new AppError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        `Upstream ${endpoint.upstream.name} refused initialize${err?.message ? `: ${String(err.message)}` : ""}.`,
        { upstream: endpoint.upstream.name },
      );
    }
    const link = new HttpLink(
      endpoint,
      handlers,
      r.sessionId,
      result.protocolVersion,
      (result.capabilities as Json) ?? {},
      false,
    );
    await link.notification("notifications/initialized");
    return link;
  }

  /** Another node's (or an earlier) upstream session, from the session record: no round trip. */
  static resume(endpoint: HttpEndpoint, handlers: UpstreamHandlers, ref: UpstreamSessionRef): HttpLink {
    return new HttpLink(
      endpoint,
      handlers,
      ref.sessionId,
      ref.protocolVersion ?? LEGACY_VERSION,
      (ref.capabilities as Json | undefined) ?? {},
      true,
    );
  }

  serverCapabilities(): Json {
    return this.caps;
  }

  ref(): UpstreamSessionRef {
    return {
      era: "legacy",
      ...(this.sessionId ? { sessionId: this.sessionId } : {}),
      protocolVersion: this.protocolVersion,
      capabilities: this.caps,
    };
  }

  async notification(method: string, params?: Json): Promise<void> {
    const r = await this.endpoint.post(
      JSON.stringify({ jsonrpc: "2.0", method, ...(params ? { params } : {}) }),
      this.session(),
    );
    if (r.status >= 400) throw new UpstreamHttpError(r.status, `HTTP ${r.status} to ${method}`);
  }

  private session(): { sessionId?: string; protocolVersion?: string } {
    return {
      ...(this.sessionId ? { sessionId: this.sessionId } : {}),
      protocolVersion: this.protocolVersion,
    };
  }

  /**
   * One request: resolves with the result, rejects with an AppError (TIMEOUT, UPSTREAM_ERROR for
   * a JSON-RPC error, which keeps its code), an UpstreamHttpError, or a network error.
   */
  request(method: string, params: Json, opts: LinkRequestOptions = {}): Promise<Json> {
    this.lastUsedAt = Date.now();
    const id = `g${++this.counter}`;
    const u = this.upstream;
    // Progress (MCP "Progress"): our token is the request id; the caller maps it back to the agent's.
    const sent = opts.onprogress
      ? { ...params, _meta: { ...(params._meta as Json), progressToken: id } }
      : params;
    const body = JSON.stringify({ jsonrpc: "2.0", id, method, params: sent });
    const timeout = opts.timeout ?? 60_000;
    const started = Date.now();
    const control: { abort?: () => void } = {};
    let aborted = false;
    let timedOut = false;
    // Only for the rare server-to-client request relayed while this call runs.
    let relayed: AbortController | undefined;
    const abort = () => {
      if (aborted) return;
      aborted = true;
      control.abort?.();
      relayed?.abort();
    };
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      const left = Math.min(
        timeout,
        (opts.maxTotalTimeout ?? Number.POSITIVE_INFINITY) - (Date.now() - started),
      );
      timer = setTimeout(
        () => {
          timedOut = true;
          abort();
        },
        Math.max(0, left),
      );
    };
    arm();
    opts.signal?.addEventListener("abort", abort, { once: true });
    let response: Json | null = null;
    const onMessage = (m: Json): boolean => {
      if (m.id === id && ("result" in m || "error" in m) && m.method === undefined) {
        response = m;
        return true;
      }
      if (typeof m.method === "string") {
        if (m.id !== undefined) {
          relayed ??= new AbortController();
          if (aborted) relayed.abort();
          void this.answerServerRequest(m, relayed.signal);
          return false;
        }
        const p = (m.params ?? {}) as Json;
        if (m.method === "notifications/progress" && p.progressToken === id) {
          if (opts.resetTimeoutOnProgress) arm();
          opts.onprogress?.(p);
        } else {
          this.handlers.onNotification?.(m.method, m.params as Json | undefined);
        }
      }
      return false;
    };
    const run = async (): Promise<Json> => {
      try {
        const posted = this.endpoint.post(body, this.session(), {
          control,
          ...(opts.headers ? { headers: opts.headers } : {}),
          onMessage,
        });
        if (opts.signal?.aborted) abort();
        const r = await posted;
        if (r.json && !response) onMessage(r.json);
        if (r.status >= 400 || (r.status >= 300 && r.status < 400)) {
          throw new UpstreamHttpError(r.status, `HTTP ${r.status}`);
        }
        const msg = response as Json | null;
        if (!msg) throw new UpstreamHttpError(r.status, `HTTP ${r.status} without a JSON-RPC answer`);
        if (msg.error && typeof msg.error === "object") {
          const e = msg.error as { code?: unknown; message?: unknown; data?: unknown };
          throw upstreamRpcError(u, e.code, e.message, e.data);
        }
        const result = msg.result;
        if (!result || typeof result !== "object" || Array.isArray(result)) {
          throw new AppError(ErrorCode.UPSTREAM_ERROR, `Upstream ${u.name}: the result is not an object.`, {
            upstream: u.name,
          });
        }
        return result as Json;
      } catch (err) {
        if (aborted) {
          // MCP "Cancellation": tell the upstream, whether the caller gave up or the time ran out.
          void this.notification("notifications/cancelled", {
            requestId: id,
            reason: timedOut ? "timeout" : "cancelled by the client",
          }).catch(() => {});
          if (timedOut) {
            throw new AppError(ErrorCode.TIMEOUT, `Upstream ${u.name} did not answer in time.`, {
              upstream: u.name,
            });
          }
        }
        throw err;
      } finally {
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", abort);
      }
    };
    return run();
  }

  /** A server-to-client request on a response stream: relayed to the agent, the answer POSTed back. */
  private async answerServerRequest(m: Json, signal: AbortSignal): Promise<void> {
    let reply: Json;
    try {
      // MCP "Ping": either side may ping; the answer is an empty result.
      if (m.method === "ping") reply = { jsonrpc: "2.0", id: m.id, result: {} };
      else if (!this.handlers.onRequest) throw Object.assign(new Error("Method not found"), { code: -32601 });
      else {
        const result = await this.handlers.onRequest(String(m.method), m.params as Json | undefined, signal);
        reply = { jsonrpc: "2.0", id: m.id, result: result ?? {} };
      }
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown; data?: unknown };
      reply = {
        jsonrpc: "2.0",
        id: m.id,
        error: {
          code: typeof e.code === "number" ? e.code : -32603,
          message: typeof e.message === "string" ? e.message : "error",
          ...(e.data !== undefined ? { data: e.data } : {}),
        },
      };
    }
    await this.endpoint.post(JSON.stringify(reply), this.session()).catch(() => {});
  }

  async close(opts: { terminate?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (opts.terminate && this.sessionId) await this.endpoint.terminate(this.session());
    this.handlers.onClose?.();
  }
}
