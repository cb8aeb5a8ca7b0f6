import type { IncomingMessage, ServerResponse } from "node:http";
import { AppError, ErrorCode, type Principal, type UpstreamSnapshot } from "@gatehouse/shared";
import type { Logger } from "pino";
import { parseJson, readBody } from "../http/body.js";
import { type JsonRpcId, jsonRpcError, sendAppError, sendEmpty, sendJson } from "../http/respond.js";
import { ResponseChannel, type SseLimits, SseStream } from "../http/sse.js";
import type { CoreMetrics } from "../metrics/metrics.js";
import { type SessionRecord, SessionStoreUnavailableError } from "../sessions/session-store.js";
import type { TenantState } from "../tenancy/tenant-state.js";
import type { View } from "./aggregate.js";
import type { Dispatcher } from "./dispatch.js";
import { ClientRequestError, LocalSession, type SessionRegistry } from "./local-session.js";
import {
  DEFAULT_HEADERLESS_VERSION,
  decodeHeaderValue,
  GATEWAY_SERVER_INFO,
  gatewayCapabilities,
  HEADER_MISMATCH,
  isLegacyVersion,
  isModernVersion,
  LATEST_LEGACY_VERSION,
  LEGACY_VERSIONS,
  looksModern,
  META_CLIENT_CAPABILITIES,
  META_PROTOCOL_VERSION,
  META_SERVER_INFO,
  META_SUBSCRIPTION_ID,
  MODERN_VERSIONS,
  UNSUPPORTED_PROTOCOL_VERSION,
} from "./protocol.js";

type Json = Record<string, unknown>;

export interface McpEndpointDeps {
  sessions: SessionRegistry;
  dispatcher: Dispatcher;
  metrics: CoreMetrics;
  logger: Logger;
  maxBodyBytes: number;
  /** Answer requests as SSE whenever the client accepts it (what the SDK servers do). */
  sseResponses: boolean;
  /** Open sessions one principal may hold per tenant across nodes (0 = no cap). */
  maxSessionsPerPrincipal?: number;
  /** Open `subscriptions/listen` streams one principal may hold per tenant on this node (0 = no cap). */
  maxListenersPerPrincipal?: number;
  /** Bytes an SSE stream may queue for a slow reader before it is dropped. */
  sseMaxBufferedBytes?: number;
  onStreamDropped?(): void;
}

/** Stored with the session on every node: capabilities and clientInfo together may not be larger. */
export const MAX_CLIENT_INFO_BYTES = 16 * 1024;

/** The authenticated caller on one endpoint. */
export interface Caller {
  tenant: TenantState;
  principal: Principal;
  single: UpstreamSnapshot | null;
  requestId: string;
  /** Headers every response carries (CORS). */
  headers: Record<string, string>;
  /** The request's logger (a child carrying its request id). */
  log: Logger;
}

type Classified =
  | { kind: "request"; id: string | number; method: string; params: unknown }
  | { kind: "notification"; method: string; params: unknown }
  | { kind: "response"; id: unknown; result?: unknown; error?: unknown };

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function idOf(msg: unknown): JsonRpcId {
  if (isObject(msg) && (typeof msg.id === "string" || typeof msg.id === "number")) return msg.id;
  return null;
}

/** JSON-RPC 2.0 shape check (spec section 4); INVALID_REQUEST when it is none of request, notification, response. */
function classify(msg: unknown): Classified {
  if (Array.isArray(msg)) {
    throw new AppError(
      ErrorCode.INVALID_REQUEST,
      "JSON-RPC batches are not supported (removed in MCP 2025-06-18); send one message per POST.",
    );
  }
  if (!isObject(msg) || msg.jsonrpc !== "2.0") {
    throw new AppError(
      ErrorCode.INVALID_REQUEST,
      'Not a JSON-RPC 2.0 message: expected an object with "jsonrpc": "2.0".',
    );
  }
  const hasId = "id" in msg;
  if (typeof msg.method === "string" && msg.method !== "") {
    if (msg.params !== undefined && !isObject(msg.params)) {
      throw new AppError(ErrorCode.INVALID_REQUEST, "JSON-RPC params must be an object in MCP.");
    }
    if (!hasId) return { kind: "notification", method: msg.method, params: msg.params };
    if (
      (typeof msg.id === "string" && msg.id !== "") ||
      (typeof msg.id === "number" && Number.isFinite(msg.id))
    ) {
      return { kind: "request", id: msg.id, method: msg.method, params: msg.params };
    }
    throw new AppError(
      ErrorCode.INVALID_REQUEST,
      "A JSON-RPC request id must be a non-empty string or a number (MCP: never null).",
    );
  }
  if (hasId && !("method" in msg) && ("result" in msg || "error" in msg)) {
    return { kind: "response", id: msg.id, result: msg.result, error: msg.error };
  }
  throw new AppError(ErrorCode.INVALID_REQUEST, "Not a JSON-RPC request, notification or response.");
}

function acceptsOf(req: IncomingMessage): { json: boolean; sse: boolean; any: boolean } {
  const accept = (header(req, "accept") ?? "").toLowerCase();
  if (accept === "") return { json: true, sse: false, any: true };
  const any = accept.includes("*/*");
  return {
    json: any || accept.includes("application/json") || accept.includes("application/*"),
    sse: accept.includes("text/event-stream"),
    any,
  };
}

/** A JSON-RPC error object for anything a handler threw. */
export function errorObject(err: unknown): { code: number; message: string; data?: unknown } {
  if (err instanceof AppError) {
    const e = err.toJsonRpcError();
    const override = (err as AppError & { jsonRpcCode?: number }).jsonRpcCode;
    return override !== undefined ? { ...e, code: override } : e;
  }
  if (err instanceof ClientRequestError) return { code: err.code, message: err.message, data: err.data };
  return new AppError(
    ErrorCode.INTERNAL,
    "Internal gateway error; the log has details under the request id.",
  ).toJsonRpcError();
}

/**
 * MCP Streamable HTTP on `/t/{tenant}/mcp[/{upstream}]`: revision 2025-11-25 (and older ones the
 * SDKs still speak) with sessions, and revision 2026-07-28 stateless requests, on the same path.
 */
export class McpEndpoint {
  private active = 0;
  private draining = false;
  private idle: Array<() => void> = [];

  private readonly sseLimits: SseLimits;

  constructor(private readonly deps: McpEndpointDeps) {
    this.sseLimits = {
      maxBufferedBytes: deps.sseMaxBufferedBytes ?? 8 * 1024 * 1024,
      ...(deps.onStreamDropped ? { onDrop: deps.onStreamDropped } : {}),
    };
  }

  /** JSON-RPC requests being served on this node now. */
  get inFlight(): number {
    return this.active;
  }

  /**
   * Stops taking new JSON-RPC requests and waits up to `timeoutMs` for the ones in flight;
   * true when none is left.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.draining = true;
    if (this.active === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      new Promise<boolean>((resolve) => this.idle.push(() => resolve(true))),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return done;
  }

  /**
   * While draining, a POST of a session with calls in flight here is still let in: it may carry
   * the agent's answer to a sampling or elicitation request, or a cancellation, that those calls
   * need to finish. New requests in it are refused (503) by `post`.
   */
  admitWhileDraining(req: IncomingMessage): boolean {
    if (req.method !== "POST") return false;
    const sid = header(req, "mcp-session-id");
    const s = sid ? this.deps.sessions.sessions.get(sid) : undefined;
    return s !== undefined && s.inflight.size > 0;
  }

  private enter(): void {
    this.active++;
  }

  private leave(): void {
    this.active--;
    if (this.active === 0 && this.idle.length > 0) for (const fn of this.idle.splice(0)) fn();
  }

  async handle(req: IncomingMessage, res: ServerResponse, caller: Caller): Promise<void> {
    switch (req.method) {
      case "POST":
        return await this.post(req, res, caller);
      case "GET":
        return await this.get(req, res, caller);
      case "DELETE":
        return await this.delete(req, res, caller);
      default:
        sendAppError(
          res,
          new AppError(ErrorCode.INVALID_REQUEST, `Method ${req.method} is not allowed on an MCP endpoint.`),
          null,
          { ...caller.headers, allow: "GET, POST, DELETE" },
          405,
        );
    }
  }

  private view(caller: Caller): View {
    return { tenant: caller.tenant, principal: caller.principal, single: caller.single };
  }

  /** Loads the session named by Mcp-Session-Id (any node's), checking tenant, endpoint and principal. */
  private async session(
    req: IncomingMessage,
    res: ServerResponse,
    caller: Caller,
    id: JsonRpcId,
  ): Promise<LocalSession | null> {
    const sid = header(req, "mcp-session-id");
    if (!sid) {
      // Streamable HTTP "Session Management": servers SHOULD answer 400 to a request without the session id.
      sendAppError(
        res,
        new AppError(ErrorCode.INVALID_REQUEST, "Mcp-Session-Id header is required; send initialize first."),
        id,
        caller.headers,
        400,
      );
      return null;
    }
    let found: Awaited<ReturnType<SessionRegistry["find"]>> = null;
    try {
      found = sid.length <= 256 ? await this.deps.sessions.find(sid) : null;
    } catch (err) {
      // The shared store is unreachable and this node does not hold the session: say so, retryable.
      caller.log.warn({ err: (err as Error).message }, "session lookup failed");
      sendAppError(
        res,
        new AppError(
          ErrorCode.SERVICE_UNAVAILABLE,
          "The session store is unreachable and this gateway node does not hold this session; retry shortly (the node that served it still can).",
        ),
        id,
        { ...caller.headers, "retry-after": "1" },
        503,
      );
      return null;
    }
    const record = found instanceof LocalSession ? found.record : found;
    // Bound to tenant, endpoint and principal: anyone else gets the same 404 as for an unknown id.
    if (
      !record ||
      record.tenantId !== caller.tenant.id ||
      record.principalId !== caller.principal.id ||
      record.upstream !== (caller.single?.name ?? null)
    ) {
      sendAppError(
        res,
        new AppError(ErrorCode.SESSION_NOT_FOUND, "Session not found or expired; initialize a new session."),
        id,
        caller.headers,
        404,
      );
      return null;
    }
    const s = found instanceof LocalSession ? found : this.deps.sessions.attach(record, caller.principal);
    s.principal = caller.principal;
    s.lastUsedAt = Date.now();
    return s;
  }

  /** MCP-Protocol-Version on a legacy request: 400 when the revision is not one we speak. */
  private checkVersionHeader(
    req: IncomingMessage,
    res: ServerResponse,
    caller: Caller,
    id: JsonRpcId,
  ): boolean {
    const v = header(req, "mcp-protocol-version");
    if (v === undefined || isLegacyVersion(v)) return true;
    sendJson(
      res,
      400,
      jsonRpcError(id, {
        code: UNSUPPORTED_PROTOCOL_VERSION,
        message: `Unsupported MCP-Protocol-Version ${JSON.stringify(v)}; supported: ${[...MODERN_VERSIONS, ...LEGACY_VERSIONS].join(", ")}.`,
        data: {
          code: ErrorCode.INVALID_REQUEST,
          supported: [...MODERN_VERSIONS, ...LEGACY_VERSIONS],
          requested: v,
        },
      }),
      caller.headers,
    );
    return false;
  }

  private async post(req: IncomingMessage, res: ServerResponse, caller: Caller): Promise<void> {
    const ctype = (header(req, "content-type") ?? "application/json").toLowerCase();
    if (!ctype.includes("application/json")) {
      sendAppError(
        res,
        new AppError(ErrorCode.INVALID_REQUEST, "Content-Type must be application/json."),
        null,
        caller.headers,
        415,
      );
      return;
    }
    const accepts = acceptsOf(req);
    if (!accepts.json && !accepts.sse) {
      sendAppError(
        res,
        new AppError(
          ErrorCode.INVALID_REQUEST,
          "Accept must include application/json and text/event-stream.",
        ),
        null,
        caller.headers,
        406,
      );
      return;
    }
    let msg: unknown;
    let c: Classified;
    try {
      msg = parseJson(await readBody(req, this.deps.maxBodyBytes));
      c = classify(msg);
    } catch (err) {
      const e =
        err instanceof AppError ? err : new AppError(ErrorCode.INVALID_REQUEST, "Unreadable request body.");
      sendAppError(res, e, idOf(msg), caller.headers, e.httpStatus);
      return;
    }
    if (this.draining && c.kind === "request") {
      sendAppError(
        res,
        new AppError(ErrorCode.SERVICE_UNAVAILABLE, "This gateway node is shutting down; retry."),
        c.id,
        { ...caller.headers, connection: "close", "retry-after": "1" },
      );
      return;
    }
    const params = isObject((c as { params?: unknown }).params)
      ? ((c as { params: Json }).params as Json)
      : {};
    const meta = isObject(params._meta) ? params._meta : {};
    const headerVersion = header(req, "mcp-protocol-version");
    const metaVersion =
      typeof meta[META_PROTOCOL_VERSION] === "string" ? (meta[META_PROTOCOL_VERSION] as string) : undefined;
    const modern =
      c.kind !== "response" &&
      (c as { method: string }).method !== "initialize" &&
      (metaVersion !== undefined || (headerVersion !== undefined && looksModern(headerVersion)));
    if (modern)
      return await this.postModern(req, res, caller, c, params, metaVersion, headerVersion, accepts.sse);

    if (c.kind === "request" && c.method === "initialize")
      return await this.initialize(res, caller, c.id, params);

    const id = c.kind === "request" ? c.id : null;
    if (!this.checkVersionHeader(req, res, caller, id)) return;
    const session = await this.session(req, res, caller, id);
    if (!session) return;

    if (c.kind === "notification") {
      this.onNotification(session, c.method, params);
      sendEmpty(res, 202, caller.headers);
      return;
    }
    if (c.kind === "response") {
      await this.deps.sessions.deliverResponse(session, c);
      sendEmpty(res, 202, caller.headers);
      return;
    }
    await this.serve(req, res, caller, session, c, accepts.sse, false);
  }

  /** Runs one request and answers it as JSON, or as SSE once something must go out before the response. */
  private async serve(
    _req: IncomingMessage,
    res: ServerResponse,
    caller: Caller,
    session: LocalSession | null,
    c: { id: string | number; method: string; params: unknown },
    acceptsSse: boolean,
    modern: boolean,
  ): Promise<void> {
    const extra: Record<string, string> = { ...caller.headers };
    if (session) extra["mcp-session-id"] = session.id;
    const channel = new ResponseChannel(
      res,
      acceptsSse,
      extra,
      this.deps.sseResponses && !modern,
      this.sseLimits,
    );
    // (2026-07-28 errors such as 404 for an unknown method need their HTTP status, so modern answers stay JSON unless streaming.)
    const abort = new AbortController();
    const key = LocalSession.key(c.id);
    const inflight = { id: c.id, upstreamId: null as string | null, abort, channel, startedAt: Date.now() };
    if (session) session.inflight.set(key, inflight);
    this.enter();
    // 2026-07-28: closing the response stream cancels the request. Earlier revisions: it does not.
    if (modern) channel.onClientGone(() => abort.abort());
    try {
      const result = await this.deps.dispatcher.dispatch(
        {
          view: this.view(caller),
          session,
          modern,
          requestId: caller.requestId,
          log: caller.log,
          httpHeaders: _req.headers,
          id: c.id,
          signal: abort.signal,
          send: (m) => channel.send(m),
        },
        c.method,
        c.params,
      );
      this.deps.metrics.mcpRequests.inc({ method: metricMethod(c.method), outcome: "ok" });
      channel.finish({
        jsonrpc: "2.0",
        id: c.id,
        result: modern ? decorateModern(c.method, result) : result,
      });
    } catch (err) {
      const e = errorObject(err);
      if (!(err instanceof AppError) && !(err instanceof ClientRequestError)) {
        caller.log.error({ err, method: c.method }, "request failed");
      }
      this.deps.metrics.mcpRequests.inc({ method: metricMethod(c.method), outcome: "error" });
      const data = isObject(e.data) ? e.data : {};
      // 2026-07-28 "Protocol Version Header": an unknown method is 404 with -32601 on HTTP.
      const status = modern && data.code === ErrorCode.METHOD_NOT_FOUND ? 404 : 200;
      channel.finish(jsonRpcError(c.id, e), status);
    } finally {
      if (session) session.inflight.delete(key);
      this.leave();
    }
  }

  private onNotification(session: LocalSession, method: string, params: Json): void {
    if (method === "notifications/cancelled") {
      const rid = params.requestId;
      if (typeof rid === "string" || typeof rid === "number") void this.deps.sessions.cancel(session.id, rid);
      return;
    }
    if (method === "notifications/roots/list_changed") {
      for (const p of session.conns.values()) {
        void p.then((c) => c.notification("notifications/roots/list_changed")).catch(() => {});
      }
    }
    // notifications/initialized and anything else: nothing to do.
  }

  /** Lifecycle "Initialization" (2025-11-25): negotiate the version, issue an unguessable session id bound to the caller. */
  private async initialize(
    res: ServerResponse,
    caller: Caller,
    id: string | number,
    params: Json,
  ): Promise<void> {
    const requested = params.protocolVersion;
    if (typeof requested !== "string" || !isObject(params.capabilities) || !isObject(params.clientInfo)) {
      sendAppError(
        res,
        new AppError(
          ErrorCode.INVALID_REQUEST,
          "initialize needs params.protocolVersion (string), params.capabilities and params.clientInfo (objects).",
        ),
        id,
        caller.headers,
        400,
      );
      return;
    }
    // Stored with the session (Redis) and read by every node that serves it: bounded.
    const stored =
      Buffer.byteLength(JSON.stringify(params.capabilities)) +
      Buffer.byteLength(JSON.stringify(params.clientInfo));
    if (stored > MAX_CLIENT_INFO_BYTES) {
      sendAppError(
        res,
        new AppError(
          ErrorCode.INVALID_REQUEST,
          `initialize: params.capabilities and params.clientInfo together are ${stored} bytes; the gateway stores at most ${MAX_CLIENT_INFO_BYTES} with a session. Send only the capabilities the client has.`,
          { field: "params.capabilities", limitBytes: MAX_CLIENT_INFO_BYTES },
        ),
        id,
        caller.headers,
        400,
      );
      return;
    }
    // Version negotiation: echo a version we speak, else offer our latest.
    const version = isLegacyVersion(requested) ? requested : LATEST_LEGACY_VERSION;
    const record: SessionRecord = {
      id: this.deps.sessions.newSessionId(),
      tenantId: caller.tenant.id,
      principalId: caller.principal.id,
      upstream: caller.single?.name ?? null,
      protocolVersion: version,
      clientCapabilities: params.capabilities,
      clientInfo: params.clientInfo,
      logLevel: null,
      upstreams: {},
      createdAt: Date.now(),
    };
    const cap = this.deps.maxSessionsPerPrincipal ?? 0;
    try {
      // Stored first, then counted: the count treats members without a stored session as expired,
      // so a session must exist before it is counted (else concurrent initializes slip past the cap).
      const session = await this.deps.sessions.create(record, caller.principal);
      if (cap > 0 && !(await this.deps.sessions.claimSlot(record, cap))) {
        await this.deps.sessions.terminate(session);
        caller.log.info({ principal: caller.principal.id, cap }, "session cap reached");
        sendAppError(
          res,
          new AppError(
            ErrorCode.RATE_LIMITED,
            `This principal already has ${cap} open sessions in this tenant (the gateway's cap); end unused ones with DELETE, or wait for idle ones to expire, then initialize again.`,
            { limit: cap, scope: "sessions", retryAfterMs: 60_000 },
          ),
          id,
          { ...caller.headers, "retry-after": "60" },
          429,
        );
        return;
      }
    } catch (err) {
      if (err instanceof SessionStoreUnavailableError)
        caller.log.warn({ err: err.message }, "could not store session");
      else caller.log.error({ err }, "could not store session");
      sendAppError(
        res,
        new AppError(
          ErrorCode.SERVICE_UNAVAILABLE,
          "The session store is unavailable, so no new session can start; sessions already open go on. Retry shortly.",
        ),
        id,
        { ...caller.headers, "retry-after": "1" },
      );
      return;
    }
    this.deps.metrics.mcpRequests.inc({ method: "initialize", outcome: "ok" });
    sendJson(
      res,
      200,
      {
        jsonrpc: "2.0",
        id,
        result: {
          protocolVersion: version,
          capabilities: gatewayCapabilities(),
          serverInfo: GATEWAY_SERVER_INFO,
          instructions: caller.single
            ? `Gatehouse: upstream ${caller.single.name} of tenant ${caller.tenant.slug}.`
            : `Gatehouse: every upstream of tenant ${caller.tenant.slug}; tool and prompt names carry the upstream's prefix.`,
        },
      },
      { ...caller.headers, "mcp-session-id": record.id },
    );
  }

  /** 2026-07-28 stateless request: validate the per-request envelope and headers, then serve it. */
  private async postModern(
    req: IncomingMessage,
    res: ServerResponse,
    caller: Caller,
    c: Classified,
    params: Json,
    metaVersion: string | undefined,
    headerVersion: string | undefined,
    acceptsSse: boolean,
  ): Promise<void> {
    const id = c.kind === "request" ? c.id : null;
    const mismatch = (message: string) =>
      sendJson(
        res,
        400,
        jsonRpcError(id, { code: HEADER_MISMATCH, message, data: { code: ErrorCode.INVALID_REQUEST } }),
        caller.headers,
      );
    if (c.kind !== "request") {
      // No client-to-server notifications over Streamable HTTP in this revision; accept and ignore them.
      if (c.kind === "notification") sendEmpty(res, 202, caller.headers);
      else
        sendAppError(
          res,
          new AppError(ErrorCode.INVALID_REQUEST, "Clients must not send JSON-RPC responses in 2026-07-28."),
          null,
          caller.headers,
          400,
        );
      return;
    }
    const version = metaVersion ?? headerVersion!;
    // "Protocol Version Header": unsupported revision → 400 UnsupportedProtocolVersionError listing ours.
    if (!isModernVersion(version)) {
      sendJson(
        res,
        400,
        jsonRpcError(id, {
          code: UNSUPPORTED_PROTOCOL_VERSION,
          message: "Unsupported protocol version",
          data: {
            code: ErrorCode.INVALID_REQUEST,
            supported: [...MODERN_VERSIONS, ...LEGACY_VERSIONS],
            requested: version,
          },
        }),
        caller.headers,
      );
      return;
    }
    // "Server Validation": headers must be present and match the body.
    if (headerVersion !== version)
      return mismatch(
        `MCP-Protocol-Version header ${JSON.stringify(headerVersion ?? null)} does not match _meta ${JSON.stringify(version)}.`,
      );
    const mcpMethod = header(req, "mcp-method");
    if (mcpMethod !== c.method)
      return mismatch(
        `Mcp-Method header ${JSON.stringify(mcpMethod ?? null)} does not match method ${JSON.stringify(c.method)}.`,
      );
    if (c.method === "tools/call" || c.method === "prompts/get" || c.method === "resources/read") {
      const raw = header(req, "mcp-name");
      const expected = c.method === "resources/read" ? params.uri : params.name;
      const decoded = raw === undefined ? null : decodeHeaderValue(raw);
      if (decoded === null || decoded !== expected) {
        return mismatch(
          `Mcp-Name header does not match the request's ${c.method === "resources/read" ? "uri" : "name"}.`,
        );
      }
    }
    const meta = params._meta as Json;
    if (!isObject(meta[META_CLIENT_CAPABILITIES]) || typeof meta[META_PROTOCOL_VERSION] !== "string") {
      sendJson(
        res,
        400,
        jsonRpcError(id, {
          code: -32602,
          message: `Every 2026-07-28 request needs _meta["${META_PROTOCOL_VERSION}"] and _meta["${META_CLIENT_CAPABILITIES}"].`,
          data: { code: ErrorCode.INVALID_REQUEST },
        }),
        caller.headers,
      );
      return;
    }
    if (c.method === "server/discover") {
      sendJson(
        res,
        200,
        { jsonrpc: "2.0", id, result: { ...this.deps.dispatcher.discover(), resultType: "complete" } },
        caller.headers,
      );
      return;
    }
    if (c.method === "subscriptions/listen") return this.listen(req, res, caller, c.id, params);
    if (c.method === "ping" || c.method === "logging/setLevel") {
      sendJson(
        res,
        404,
        jsonRpcError(id, {
          code: -32601,
          message: `Method ${c.method} is not available to 2026-07-28 callers of this gateway.`,
          data: { code: ErrorCode.METHOD_NOT_FOUND },
        }),
        caller.headers,
      );
      return;
    }
    await this.serve(req, res, caller, null, c, acceptsSse, true);
  }

  /**
   * 2026-07-28 `subscriptions/listen`: a long-lived SSE response carrying the list_changed
   * notifications the caller opted in to, tagged with the subscription id (the request id).
   * Resource subscriptions are not honoured (the acknowledgement says so).
   */
  private listen(
    req: IncomingMessage,
    res: ServerResponse,
    caller: Caller,
    id: string | number,
    params: Json,
  ): void {
    if (!acceptsOf(req).sse) {
      sendAppError(
        res,
        new AppError(ErrorCode.INVALID_REQUEST, "subscriptions/listen needs Accept: text/event-stream."),
        id,
        caller.headers,
        406,
      );
      return;
    }
    const wanted = isObject(params.notifications) ? params.notifications : {};
    const filter: Record<string, boolean> = {};
    for (const k of ["toolsListChanged", "promptsListChanged", "resourcesListChanged"])
      if (wanted[k] === true) filter[k] = true;
    const cap = this.deps.maxListenersPerPrincipal ?? 0;
    if (cap > 0) {
      let open = 0;
      for (const l of this.deps.sessions.listeners)
        if (l.tenantId === caller.tenant.id && l.principal.id === caller.principal.id) open++;
      if (open >= cap) {
        sendAppError(
          res,
          new AppError(
            ErrorCode.RATE_LIMITED,
            `This principal already has ${cap} open subscriptions/listen streams on this gateway node (GATEWAY_MAX_LISTENERS_PER_PRINCIPAL); close one before listening again.`,
            { limit: cap, scope: "listeners", retryAfterMs: 60_000 },
          ),
          id,
          { ...caller.headers, "retry-after": "60" },
          429,
        );
        return;
      }
    }
    const stream = new SseStream(res, caller.headers, this.sseLimits);
    const listener = {
      id,
      tenantId: caller.tenant.id,
      principal: caller.principal,
      upstream: caller.single?.name ?? null,
      filter,
      stream,
      toolsSignature: null as string | null,
    };
    stream.send({
      jsonrpc: "2.0",
      method: "notifications/subscriptions/acknowledged",
      params: { notifications: filter, _meta: { [META_SUBSCRIPTION_ID]: id } },
    });
    this.deps.sessions.listeners.add(listener);
    stream.onClose(() => this.deps.sessions.listeners.delete(listener));
  }

  /** GET: the session's stream for server-initiated messages (Streamable HTTP, "Listening for Messages from the Server"). */
  private async get(req: IncomingMessage, res: ServerResponse, caller: Caller): Promise<void> {
    if (!acceptsOf(req).sse) {
      sendAppError(
        res,
        new AppError(ErrorCode.INVALID_REQUEST, "GET needs Accept: text/event-stream."),
        null,
        caller.headers,
        406,
      );
      return;
    }
    const v = header(req, "mcp-protocol-version");
    if (v !== undefined && looksModern(v)) {
      // 2026-07-28 has no GET stream.
      sendAppError(
        res,
        new AppError(
          ErrorCode.INVALID_REQUEST,
          "Protocol 2026-07-28 has no GET stream; send requests with POST.",
        ),
        null,
        { ...caller.headers, allow: "POST" },
        405,
      );
      return;
    }
    if (!this.checkVersionHeader(req, res, caller, null)) return;
    const session = await this.session(req, res, caller, null);
    if (!session) return;
    if (session.getStream && !session.getStream.isClosed) {
      sendAppError(
        res,
        new AppError(ErrorCode.CONFLICT, "This session already has a GET stream open."),
        null,
        caller.headers,
        409,
      );
      return;
    }
    const stream = new SseStream(res, { ...caller.headers, "mcp-session-id": session.id }, this.sseLimits);
    session.getStream = stream;
    stream.onClose(() => {
      if (session.getStream === stream) session.getStream = null;
    });
  }

  /** DELETE: the client ends its session (Streamable HTTP, "Session Management"). */
  private async delete(req: IncomingMessage, res: ServerResponse, caller: Caller): Promise<void> {
    if (!this.checkVersionHeader(req, res, caller, null)) return;
    const session = await this.session(req, res, caller, null);
    if (!session) return;
    await this.deps.sessions.terminate(session);
    sendEmpty(res, 204, caller.headers);
  }
}

const KNOWN_METHODS = new Set([
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
]);

/** Bounded label values: a client cannot mint metric series with made-up method names. */
function metricMethod(m: string): string {
  return KNOWN_METHODS.has(m) ? m : "other";
}

const CACHEABLE = new Set([
  "tools/list",
  "prompts/list",
  "resources/list",
  "resources/templates/list",
  "resources/read",
]);

/** 2026-07-28 results: resultType always, ttlMs and cacheScope on cacheable ones, server identity in _meta. */
function decorateModern(method: string, result: Json): Json {
  const meta = isObject(result._meta) ? result._meta : {};
  return {
    ...result,
    resultType: "complete",
    // Lists are filtered per caller, so never shared between callers.
    ...(CACHEABLE.has(method) ? { ttlMs: 0, cacheScope: "private" } : {}),
    _meta: { ...meta, [META_SERVER_INFO]: GATEWAY_SERVER_INFO },
  };
}

export { DEFAULT_HEADERLESS_VERSION };
