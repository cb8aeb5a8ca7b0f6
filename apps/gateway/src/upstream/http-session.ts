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

/**
 * Bounds on what an upstream may send back on one request (issue 8): a single JSON-RPC message
 * (a JSON body, or one SSE event) may not exceed `maxMessageBytes`; the response headers must come
 * within `firstByteMs`; once they have, the body may not stay silent for longer than `idleMs`.
 */
export interface ResponseLimits {
  maxMessageBytes: number;
  firstByteMs: number;
  idleMs: number;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** An upstream's answer broke one of the `ResponseLimits`: the request was ended. */
export function upstreamLimitError(
  u: UpstreamSnapshot,
  limit: "maxMessageBytes" | "firstByteMs" | "idleMs",
  value: number,
): AppError {
  const text =
    limit === "maxMessageBytes"
      ? `sent a message larger than the gateway's limit of ${value} bytes (GATEWAY_UPSTREAM_MAX_MESSAGE_BYTES)`
      : limit === "firstByteMs"
        ? `did not start answering within ${value} ms`
        : `sent nothing for ${value} ms in the middle of its answer (GATEWAY_UPSTREAM_IDLE_TIMEOUT_MS)`;
  return new AppError(
    limit === "maxMessageBytes" ? ErrorCode.UPSTREAM_ERROR : ErrorCode.TIMEOUT,
    `Upstream ${u.name} ${text}; the gateway ended the request.`,
    { upstream: u.name, limit, [limit === "maxMessageBytes" ? "limitBytes" : "limitMs"]: value },
  );
}

/**
 * An incremental reader of a `text/event-stream` body (WHATWG HTML "Server-sent events", event
 * stream interpretation): bytes are split into lines as they arrive (each byte looked at once,
 * never rescanned), `data` lines are decoded when complete, and an event is handed on at its
 * blank line. An event (or a line) growing past `maxEventBytes` throws `SseEventTooLarge`: the
 * caller ends the stream. Only the data of the event being read is held.
 * With `collect: false` it only measures (the SDK transports parse the stream themselves).
 */
export class SseReader {
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private data: string[] = [];
  /** Bytes of the event being read so far (complete lines and the partial one). */
  private eventBytes = 0;
  /** The previous chunk ended in CR: a LF at the start of the next one belongs to it. */
  private skipLf = false;

  constructor(
    private readonly maxEventBytes: number,
    private readonly onEvent: (data: string) => void = () => {},
    private readonly collect = true,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    if (this.skipLf) {
      this.skipLf = false;
      if (chunk[0] === 0x0a) start = 1;
    }
    let nextLf = chunk.indexOf(0x0a, start);
    let nextCr = chunk.indexOf(0x0d, start);
    while (nextLf >= 0 || nextCr >= 0) {
      const end = nextCr < 0 || (nextLf >= 0 && nextLf < nextCr) ? nextLf : nextCr;
      let after = end + 1;
      if (end === nextCr) {
        if (end + 1 < chunk.length) {
          if (chunk[end + 1] === 0x0a) after = end + 2;
        } else this.skipLf = true;
      }
      this.line(chunk, start, end);
      start = after;
      if (nextLf >= 0 && nextLf < start) nextLf = chunk.indexOf(0x0a, start);
      if (nextCr >= 0 && nextCr < start) nextCr = chunk.indexOf(0x0d, start);
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.eventBytes += rest.length;
      if (this.eventBytes > this.maxEventBytes) throw new SseEventTooLarge();
      // Only data lines are kept; other fields (and comments) are measured, not stored.
      if (this.collect) this.partial.push(rest);
      this.partialBytes += rest.length;
    }
  }

  private line(chunk: Buffer, from: number, to: number): void {
    const length = this.partialBytes + (to - from);
    this.eventBytes += to - from;
    if (this.eventBytes > this.maxEventBytes) throw new SseEventTooLarge();
    if (length === 0) {
      this.partialBytes = 0;
      this.eventBytes = 0;
      if (this.data.length > 0) {
        const data = this.data.join("\n");
        this.data = [];
        this.onEvent(data);
      }
      return;
    }
    if (!this.collect) {
      this.partialBytes = 0;
      return;
    }
    const line =
      this.partial.length === 0
        ? chunk.subarray(from, to)
        : Buffer.concat([...this.partial, chunk.subarray(from, to)]);
    this.partial = [];
    this.partialBytes = 0;
    // "data" or "data:…" (a field named data); one leading space of the value is dropped.
    if (line.length < 4 || line[0] !== 0x64 || line[1] !== 0x61 || line[2] !== 0x74 || line[3] !== 0x61)
      return;
    if (line.length === 4) {
      this.data.push("");
      return;
    }
    if (line[4] !== 0x3a) return;
    this.data.push(line.toString("utf8", line[5] === 0x20 ? 6 : 5));
  }
}

/** Thrown by `SseReader` when one event outgrows its limit. */
export class SseEventTooLarge extends Error {
  constructor() {
    super("SSE event too large");
    this.name = "SseEventTooLarge";
  }
}

/** One upstream's endpoint: URL, static headers and the keep-alive agent every session shares. */
export class HttpEndpoint {
  readonly url: URL;
  private readonly agent: http.Agent;
  private readonly lib: typeof http | typeof https;

  readonly limits: ResponseLimits;

  constructor(
    readonly upstream: UpstreamSnapshot,
    /** Static headers (unsealed): never the agent's own credentials. */
    readonly headers: Record<string, string>,
    limits: Partial<ResponseLimits> = {},
  ) {
    const timeout = upstream.timeoutMs ?? 60_000;
    this.limits = {
      maxMessageBytes: limits.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      firstByteMs: limits.firstByteMs ?? timeout,
      idleMs: limits.idleMs ?? timeout,
    };
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
      // A body that trickles forever keeps the socket busy: 2 s in all, whatever comes.
      const hard = setTimeout(() => {
        req.destroy();
        resolve();
      }, 2000);
      hard.unref();
      req.on("close", () => clearTimeout(hard));
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
      /** Bound on waiting for the response headers (default: the endpoint's `firstByteMs`). */
      firstByteMs?: number;
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
        const limits = this.limits;
        const u = this.upstream;
        // Until the response headers: `firstByteMs`; then the body may not go silent for `idleMs`
        // (one timer, refreshed per chunk). Breaking a limit ends the request with its error.
        const firstByteMs = opts.firstByteMs ?? limits.firstByteMs;
        let timer: NodeJS.Timeout | null = setTimeout(
          () => req.destroy(upstreamLimitError(u, "firstByteMs", firstByteMs)),
          firstByteMs,
        );
        const stopTimer = () => {
          if (timer) clearTimeout(timer);
          timer = null;
        };
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
            stopTimer();
            timer = setTimeout(
              () => req.destroy(upstreamLimitError(u, "idleMs", limits.idleMs)),
              limits.idleMs,
            );
            const fail = (err: Error) => {
              stopTimer();
              if (settled) return;
              settled = true;
              reject(err);
            };
            const tooLarge = () => {
              const err = upstreamLimitError(u, "maxMessageBytes", limits.maxMessageBytes);
              fail(err);
              req.destroy(err);
            };
            res.on("error", fail);
            if (status >= 200 && status < 300 && type.includes("text/event-stream")) {
              let done = false;
              const reader = new SseReader(limits.maxMessageBytes, (data) => {
                try {
                  if (opts.onMessage?.(JSON.parse(data) as Json)) done = true;
                } catch {
                  // a malformed event is skipped, as the SDK does
                }
              });
              res.on("data", (chunk: Buffer) => {
                if (settled) return;
                timer?.refresh();
                try {
                  reader.push(chunk);
                } catch (err) {
                  if (err instanceof SseEventTooLarge) return tooLarge();
                  throw err;
                }
                // The answer is in: the rest of the stream (if any) is not ours to wait for.
                if (done && !settled) {
                  settled = true;
                  stopTimer();
                  resolve({ status, sessionId, json: null });
                  res.destroy();
                }
              });
              res.on("end", () => {
                stopTimer();
                if (settled) return;
                settled = true;
                resolve({ status, sessionId, json: null });
              });
              return;
            }
            const chunks: Buffer[] = [];
            let bytes = 0;
            res.on("data", (chunk: Buffer) => {
              if (settled) return;
              timer?.refresh();
              bytes += chunk.length;
              if (bytes > limits.maxMessageBytes) return tooLarge();
              chunks.push(chunk);
            });
            res.on("end", () => {
              stopTimer();
              if (settled) return;
              settled = true;
              let json: Json | null = null;
              if (type.includes("application/json") && bytes > 0) {
                try {
                  json = JSON.parse(
                    (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes)).toString("utf8"),
                  ) as Json;
                } catch {
                  json = null;
                }
              }
              resolve({ status, sessionId, json });
            });
          },
        );
        req.on("close", stopTimer);
        req.on("error", (err: NodeJS.ErrnoException) => {
          stopTimer();
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

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function abortError(): Error {
  const e = new Error("The request was aborted");
  e.name = "AbortError";
  return e;
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
        const overLimit = err instanceof AppError && isObject(err.details) && "limit" in err.details;
        if (aborted || overLimit) {
          // MCP "Cancellation": tell the upstream, whether the caller gave up or the time ran out.
          void this.notification("notifications/cancelled", {
            requestId: id,
            reason: overLimit
              ? "answer over the gateway's limits"
              : timedOut
                ? "timeout"
                : "cancelled by the client",
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
