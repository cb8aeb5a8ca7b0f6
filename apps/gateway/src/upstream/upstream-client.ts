import { AppError, ErrorCode, isOAuthAuthMode, type UpstreamSnapshot } from "@gatehouse/shared";
import { hasSealedHeaders, networkCauseOf, type Sealer, staticUpstreamHeaders } from "@gatehouse/shared/node";
import {
  Client,
  type ClientCapabilities,
  type PriorDiscovery,
  ProtocolError,
  SdkError,
  SdkErrorCode,
  SdkHttpError,
  SSEClientTransport,
  StreamableHTTPClientTransport,
  type Transport,
} from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { injectActiveTraceContext } from "../ops/tracing.js";
import type { UpstreamSessionRef } from "../sessions/session-store.js";
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  type ResponseLimits,
  SseEventTooLarge,
  SseReader,
  UpstreamHttpError,
  upstreamLimitError,
  upstreamRpcError,
} from "./http-session.js";
import { authFailureOf, type TransportAuth } from "./upstream-credentials.js";

export const GATEWAY_CLIENT_INFO = { name: "gatehouse-gateway", version: "0.1.0" };

/** Server-to-client traffic of an upstream connection, handed to whoever owns the connection. */
export interface UpstreamHandlers {
  /** sampling/createMessage, elicitation/create, roots/list from the upstream. */
  onRequest?(
    method: string,
    params: Record<string, unknown> | undefined,
    signal: AbortSignal,
  ): Promise<unknown>;
  /** Any notification other than progress (which reaches the request's onprogress). */
  onNotification?(method: string, params: Record<string, unknown> | undefined): void;
  onClose?(): void;
}

export interface ConnectOptions {
  upstream: UpstreamSnapshot;
  sealer: Sealer | null;
  allowStdio: boolean;
  connectTimeoutMs: number;
  capabilities: ClientCapabilities;
  handlers: UpstreamHandlers;
  /** Resume this upstream session instead of opening a new one. */
  resume?: UpstreamSessionRef;
  /** A cached era verdict for this upstream (skips the server/discover probe). */
  prior?: PriorDiscovery;
  /**
   * OAuth upstreams: the caller's token source. The transport asks it before every HTTP request
   * (a refreshed token is used at once, the upstream session stays) and on a 401 awaits one
   * refresh and retries once.
   */
  authProvider?: TransportAuth;
  /** Tracing is on: add the active span's `traceparent` to every HTTP request (W3C Trace Context). */
  traceContext?: boolean;
  /** Bounds on what the upstream sends back (issue 8); default: 16 MiB messages, the 60 s timeout. */
  limits?: ResponseLimits;
}

/** Options of one upstream request (the SDK's request options, plus headers for the HTTP link). */
export interface LinkRequestOptions {
  timeout?: number;
  maxTotalTimeout?: number;
  resetTimeoutOnProgress?: boolean;
  signal?: AbortSignal;
  onprogress?: (progress: Record<string, unknown>) => void;
  /** Extra HTTP headers of this request (trace context); the SDK link takes them from the active context. */
  headers?: Record<string, string>;
}

/**
 * What the dispatcher and the session registry need of an upstream session: the SDK client
 * (`UpstreamConnection`, every transport and era) or the plain HTTP link (`HttpLink`).
 */
export interface UpstreamLink {
  readonly kind: "sdk" | "http";
  readonly upstream: UpstreamSnapshot;
  readonly resumed: boolean;
  readonly isClosed: boolean;
  lastUsedAt: number;
  serverCapabilities(): Record<string, unknown>;
  request(
    method: string,
    params: Record<string, unknown>,
    opts?: LinkRequestOptions,
  ): Promise<Record<string, unknown>>;
  notification(method: string, params?: Record<string, unknown>): Promise<void>;
  ref(): UpstreamSessionRef;
  close(opts?: { terminate?: boolean }): Promise<void>;
}

/** One MCP client connection to an upstream, on the v2 SDK client (dual-era). */
export class UpstreamConnection implements UpstreamLink {
  readonly kind = "sdk" as const;
  private closed = false;
  /** The limit the upstream broke, if it did: requests then fail with it (not a bare "closed"). */
  private limitError: AppError | null = null;
  /** Requests in flight, with when each was sent (an idle breach ends only those it may belong to). */
  private readonly running = new Map<AbortController, number>();
  readonly openedAt = Date.now();
  lastUsedAt = Date.now();

  constructor(
    readonly upstream: UpstreamSnapshot,
    readonly client: Client,
    readonly transport: Transport,
    readonly resumed: boolean,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  serverCapabilities(): Record<string, unknown> {
    return (this.client.getServerCapabilities() ?? {}) as Record<string, unknown>;
  }

  async request(
    method: string,
    params: Record<string, unknown>,
    opts: LinkRequestOptions = {},
  ): Promise<Record<string, unknown>> {
    const { headers: _headers, ...options } = opts;
    if (this.limitError) throw this.limitError;
    // Ended at once when the upstream breaks a limit on any of its streams (see `breach`).
    const own = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, own.signal]) : own.signal;
    this.running.set(own, Date.now());
    try {
      const result = await this.client.request({ method: method as "tools/call", params }, {
        ...options,
        signal,
      } as never);
      return result as unknown as Record<string, unknown>;
    } catch (err) {
      if (own.signal.aborted && own.signal.reason instanceof AppError) throw own.signal.reason;
      if (this.limitError && (own.signal.aborted || this.closed)) throw this.limitError;
      throw err;
    } finally {
      this.running.delete(own);
    }
  }

  /**
   * The upstream sent more than the gateway accepts (a message over the size cap, a stalled
   * answer): requests in flight on this connection end with that error, and so do later ones on a
   * closed transport. Which request a stream belonged to is the SDK's business, so all of them go.
   */
  breach(err: AppError): void {
    this.limitError ??= err;
    for (const c of this.running.keys()) c.abort(err);
  }

  /**
   * A POST's answer, sent at `sentAt`, went silent past the idle bound. Only requests already in
   * flight then can be waiting on it; later ones are not, and neither is a request that already
   * ended (timed out or cancelled: its stream is abandoned and may stay silent for good), so the
   * connection stays usable.
   */
  stalled(err: AppError, sentAt: number): void {
    for (const [c, at] of this.running) if (at <= sentAt) c.abort(err);
  }

  async notification(method: string, params?: Record<string, unknown>): Promise<void> {
    await this.client.notification({ method, ...(params ? { params } : {}) } as never);
  }

  /** How another node (or this one, later) can reconnect to the same upstream session. */
  ref(): UpstreamSessionRef {
    const era = this.client.getProtocolEra() ?? "legacy";
    const sessionId = (this.transport as { sessionId?: string }).sessionId;
    const protocolVersion = this.client.getNegotiatedProtocolVersion();
    const discover = this.client.getDiscoverResult();
    const capabilities = this.client.getServerCapabilities() as Record<string, unknown> | undefined;
    return {
      era,
      ...(sessionId ? { sessionId } : {}),
      ...(protocolVersion ? { protocolVersion } : {}),
      ...(era === "modern" && discover ? { discover } : {}),
      ...(era === "legacy" && capabilities ? { capabilities } : {}),
    };
  }

  /** The verdict to reuse for later connections to the same upstream. */
  prior(): PriorDiscovery | undefined {
    const era = this.client.getProtocolEra();
    if (era === "legacy") return { kind: "legacy" };
    const discover = this.client.getDiscoverResult();
    if (era === "modern" && discover) return { kind: "modern", discover };
    return undefined;
  }

  async close(opts: { terminate?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (opts.terminate && this.transport instanceof StreamableHTTPClientTransport) {
      await this.transport.terminateSession().catch(() => {});
    }
    await this.client.close().catch(() => {});
  }

  markClosed(): void {
    this.closed = true;
  }
}

/** The upstream's static headers and credentials, unsealed (never the agent's own credentials). */
export function unsealHeaders(u: UpstreamSnapshot, sealer: Sealer | null): Record<string, string> {
  if (!hasSealedHeaders(u)) return {};
  if (!sealer) {
    throw new AppError(
      ErrorCode.UPSTREAM_UNAVAILABLE,
      `Upstream ${u.name} has sealed ${u.headersSealed ? "headers" : "credentials"} but this gateway node has no SECRETS_KEY; an operator must set it.`,
      { upstream: u.name },
    );
  }
  return staticUpstreamHeaders(u, sealer);
}

const STDIO_BASE_ENV = ["PATH", "HOME", "LANG", "TZ", "TMPDIR", "NODE_OPTIONS"];

function defaultLimits(u: UpstreamSnapshot): ResponseLimits {
  const timeout = u.timeoutMs ?? 60_000;
  return { maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES, firstByteMs: timeout, idleMs: timeout };
}

/**
 * fetch for the SDK's HTTP transports with the gateway's bounds on what comes back: an SSE event or
 * a JSON body over `maxMessageBytes` errors the body (the SDK drops the stream) and reports the
 * breach; a POST's answer silent for `idleMs` once started is ended too, failing only the requests
 * that were in flight when that POST was sent (`stalled`). GET streams (the
 * session's long-lived listening stream) have no idle bound: quiet is their normal state. The
 * response headers' wait is the SDK's own request timeout.
 */
function boundedFetch(
  u: UpstreamSnapshot,
  limits: ResponseLimits,
  onBreach: (err: AppError, stalledSince?: number) => void,
  inner: (url: string | URL, init?: RequestInit) => Promise<Response>,
): (url: string | URL, init?: RequestInit) => Promise<Response> {
  return async (url, init) => {
    const sentAt = Date.now();
    const res = await inner(url, init);
    if (!res.body || res.status === 204 || res.status === 205 || res.status === 304) return res;
    const sse = (res.headers.get("content-type") ?? "").includes("text/event-stream");
    const idleMs = (init?.method ?? "GET").toUpperCase() === "POST" ? limits.idleMs : 0;
    const sizer = sse ? new SseReader(limits.maxMessageBytes, undefined, false) : null;
    const source = res.body.getReader();
    let bytes = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        let idle: NodeJS.Timeout | undefined;
        const stalled =
          idleMs > 0
            ? new Promise<"idle">((resolve) => {
                idle = setTimeout(() => resolve("idle"), idleMs);
              })
            : null;
        const next = stalled ? await Promise.race([source.read(), stalled]) : await source.read();
        clearTimeout(idle);
        const fail = (err: AppError, stalled?: boolean) => {
          onBreach(err, stalled ? sentAt : undefined);
          controller.error(err);
          void source.cancel(err).catch(() => {});
        };
        if (next === "idle") return fail(upstreamLimitError(u, "idleMs", idleMs), true);
        if (next.done) return controller.close();
        const chunk = next.value;
        try {
          bytes += chunk.byteLength;
          if (sizer) sizer.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          else if (bytes > limits.maxMessageBytes) throw new SseEventTooLarge();
        } catch (err) {
          if (err instanceof SseEventTooLarge)
            return fail(upstreamLimitError(u, "maxMessageBytes", limits.maxMessageBytes));
          throw err;
        }
        controller.enqueue(chunk);
      },
      cancel(reason) {
        return source.cancel(reason);
      },
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

function makeTransport(
  opts: ConnectOptions,
  breach: (err: AppError, stalledSince?: number) => void,
): Transport {
  const u = opts.upstream;
  if (u.transport === "stdio") {
    if (!opts.allowStdio) {
      throw new AppError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        `Upstream ${u.name} is a stdio server, and this gateway does not run local commands (GATEWAY_ALLOW_STDIO is off); an operator must enable it, or use an HTTP upstream.`,
        { upstream: u.name },
      );
    }
    if (!u.command) {
      throw new AppError(ErrorCode.UPSTREAM_UNAVAILABLE, `Upstream ${u.name} has no command to run.`, {
        upstream: u.name,
      });
    }
    const env: Record<string, string> = {};
    for (const k of STDIO_BASE_ENV) {
      const v = process.env[k];
      if (v !== undefined) env[k] = v;
    }
    if (u.envSealed) {
      if (!opts.sealer) {
        throw new AppError(
          ErrorCode.UPSTREAM_UNAVAILABLE,
          `Upstream ${u.name} has a sealed environment but this node has no SECRETS_KEY.`,
          { upstream: u.name },
        );
      }
      const extra = opts.sealer.unsealJson<Record<string, unknown>>(u.envSealed);
      for (const [k, v] of Object.entries(extra ?? {})) if (typeof v === "string") env[k] = v;
    }
    // The SDK's line buffer errors (and the transport closes) past maxBufferSize: one stdio line,
    // i.e. one message, is bounded like an HTTP one.
    return new StdioClientTransport({
      command: u.command,
      args: u.args,
      env,
      stderr: "ignore",
      maxBufferSize: opts.limits?.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    });
  }
  if (!u.url) {
    throw new AppError(ErrorCode.UPSTREAM_UNAVAILABLE, `Upstream ${u.name} has no URL.`, {
      upstream: u.name,
    });
  }
  let url: URL;
  try {
    url = new URL(u.url);
  } catch {
    throw new AppError(ErrorCode.UPSTREAM_UNAVAILABLE, `Upstream ${u.name} has an invalid URL.`, {
      upstream: u.name,
    });
  }
  // Static headers only: the agent's own credentials are never forwarded (architecture.md, step 7).
  const headers = unsealHeaders(u, opts.sealer);
  const fetchFn = boundedFetch(
    u,
    opts.limits ?? defaultLimits(u),
    (err, stalledSince) => breach(err, stalledSince),
    opts.traceContext ? tracedFetch : fetch,
  );
  const auth = opts.authProvider ? { authProvider: opts.authProvider } : {};
  if (u.transport === "sse") {
    return new SSEClientTransport(url, { requestInit: { headers }, fetch: fetchFn, ...auth });
  }
  return new StreamableHTTPClientTransport(url, {
    requestInit: { headers },
    fetch: fetchFn,
    ...auth,
    // Resume the upstream's session on a node that did not open it (no new initialize).
    ...(opts.resume?.sessionId ? { sessionId: opts.resume.sessionId } : {}),
    ...(opts.resume?.protocolVersion ? { protocolVersion: opts.resume.protocolVersion } : {}),
    reconnectionOptions: {
      maxReconnectionDelay: 10_000,
      initialReconnectionDelay: 1000,
      reconnectionDelayGrowFactor: 2,
      maxRetries: 2,
    },
  });
}

/** fetch with the active span's trace context (the dispatcher runs upstream requests inside the span). */
function tracedFetch(url: string | URL, init?: RequestInit): Promise<Response> {
  const headers = injectActiveTraceContext(new Headers(init?.headers));
  return fetch(url, { ...init, headers });
}

/** Opens (or resumes) a connection; failures become UPSTREAM_UNAVAILABLE / TIMEOUT AppErrors. */
export async function connectUpstream(opts: ConnectOptions): Promise<UpstreamConnection> {
  const u = opts.upstream;
  // The connection does not exist yet when the transport is made: breaches reach it through this.
  let connection: UpstreamConnection | undefined;
  const transport = makeTransport(opts, (err, stalledSince) =>
    stalledSince === undefined ? connection?.breach(err) : connection?.stalled(err, stalledSince),
  );
  const client = new Client(GATEWAY_CLIENT_INFO, {
    capabilities: opts.capabilities,
    // Dual-era: probe with server/discover, fall back to initialize for 2025-era servers.
    versionNegotiation: { mode: "auto", probe: { timeoutMs: opts.connectTimeoutMs } },
    // Relay, not interpret: server-to-client input requests of 2026-era upstreams reach our handlers.
    inputRequired: { autoFulfill: true },
  });
  const { handlers } = opts;
  for (const method of ["sampling/createMessage", "elicitation/create", "roots/list"] as const) {
    const needs =
      method === "sampling/createMessage"
        ? "sampling"
        : method === "elicitation/create"
          ? "elicitation"
          : "roots";
    if (!handlers.onRequest || !(needs in opts.capabilities)) continue;
    const onRequest = handlers.onRequest;
    type Handler = (
      request: { params?: Record<string, unknown> },
      ctx: { mcpReq: { signal: AbortSignal } },
    ) => Promise<unknown>;
    const handler: Handler = async (request, ctx) =>
      await onRequest(method, request.params, ctx.mcpReq.signal);
    // The relay passes requests and results through unchanged; the SDK validates both ends.
    client.setRequestHandler(method, handler as never);
  }
  client.fallbackNotificationHandler = async (n) => {
    handlers.onNotification?.(n.method, n.params as Record<string, unknown> | undefined);
  };
  const conn = new UpstreamConnection(u, client, transport, Boolean(opts.resume));
  connection = conn;
  client.onerror = (err) => {
    // Transport hiccups surface through failed requests; a stdio line over the cap is named.
    if (u.transport === "stdio" && /ReadBuffer exceeded maximum size/.test(String((err as Error)?.message))) {
      conn.breach(
        upstreamLimitError(u, "maxMessageBytes", opts.limits?.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES),
      );
      // The SDK closes gently (stdin end, then a signal after 2 s); the process may write on meanwhile.
      const pid = (transport as StdioClientTransport).pid;
      if (pid) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
  };
  client.onclose = () => {
    conn.markClosed();
    handlers.onClose?.();
  };
  const signal = AbortSignal.timeout(opts.connectTimeoutMs);
  try {
    if (opts.resume?.era === "modern" && opts.resume.discover) {
      await client.connect(transport, {
        prior: { kind: "modern", discover: opts.resume.discover as never },
        timeout: opts.connectTimeoutMs,
        signal,
      });
    } else if (opts.resume?.sessionId) {
      await client.connect(transport, { prior: { kind: "legacy" }, timeout: opts.connectTimeoutMs, signal });
    } else if (opts.prior) {
      await client.connect(transport, { prior: opts.prior, timeout: opts.connectTimeoutMs, signal });
    } else {
      await client.connect(transport, { timeout: opts.connectTimeoutMs, signal });
    }
  } catch (err) {
    await client.close().catch(() => {});
    throw toAppError(err, u, "connect");
  }
  return conn;
}

/**
 * True when the upstream no longer knows our session (Streamable HTTP "Session Management": 404
 * for a terminated or unknown session; some servers answer 400 to a session id they never issued).
 */
export function isSessionGone(err: unknown, resumed: boolean): boolean {
  return (
    (err instanceof SdkHttpError || err instanceof UpstreamHttpError) &&
    (err.status === 404 || (resumed && err.status === 400))
  );
}

/** Maps whatever the SDK threw into the catalogue. JSON-RPC errors from the upstream keep their code. */
export function toAppError(err: unknown, u: UpstreamSnapshot, phase: "connect" | "request"): AppError {
  // A credential problem (reconnect needed, no fresh token) says so, however the SDK wrapped it.
  const auth = authFailureOf(err);
  if (auth) return auth;
  if (err instanceof AppError) return err;
  if (
    err instanceof SdkHttpError &&
    (err.status === 401 || err.status === 403) &&
    isOAuthAuthMode(u.authMode)
  ) {
    // The transport already refreshed once and retried: the token is fresh but not accepted.
    return new AppError(
      ErrorCode.UPSTREAM_ERROR,
      `Upstream ${u.name} refused the gateway's OAuth access token (HTTP ${err.status}) even after a refresh; a tenant admin should check the upstream's OAuth client, scopes and resource.`,
      { upstream: u.name, status: err.status },
    );
  }
  if (err instanceof ProtocolError) return upstreamRpcError(u, err.code, err.message, err.data);
  if (err instanceof SdkError && err.code === SdkErrorCode.RequestTimeout) {
    return phase === "connect"
      ? new AppError(
          ErrorCode.UPSTREAM_UNAVAILABLE,
          `Upstream ${u.name} did not answer the connection handshake in time; try again later.`,
          { upstream: u.name },
        )
      : new AppError(ErrorCode.TIMEOUT, `Upstream ${u.name} did not answer in time.`, { upstream: u.name });
  }
  if ((err instanceof SdkHttpError || err instanceof UpstreamHttpError) && phase === "request") {
    const down = err.status >= 500 || err.status === 404 || err.status === 408 || err.status === 429;
    return new AppError(
      down ? ErrorCode.UPSTREAM_UNAVAILABLE : ErrorCode.UPSTREAM_ERROR,
      `Upstream ${u.name} answered HTTP ${err.status}${down ? "; try again later" : ""}.`,
      { upstream: u.name, status: err.status },
    );
  }
  if (err instanceof SdkError && phase === "request") {
    const gone = [SdkErrorCode.NotConnected, SdkErrorCode.ConnectionClosed, SdkErrorCode.SendFailed].includes(
      err.code,
    );
    if (!gone) {
      // The upstream answered, but not usably (invalid result, missing capability, …).
      return new AppError(ErrorCode.UPSTREAM_ERROR, `Upstream ${u.name}: ${err.message}`, {
        upstream: u.name,
      });
    }
  }
  const name = (err as Error)?.name;
  if (name === "TimeoutError" || name === "AbortError") {
    return phase === "connect"
      ? new AppError(
          ErrorCode.UPSTREAM_UNAVAILABLE,
          `Upstream ${u.name} could not be reached in time; try again later.`,
          { upstream: u.name },
        )
      : new AppError(ErrorCode.TIMEOUT, `Upstream ${u.name} did not answer in time.`, { upstream: u.name });
  }
  const status =
    err instanceof SdkHttpError || err instanceof UpstreamHttpError ? ` (HTTP ${err.status})` : "";
  // The socket's own error (refused, DNS, TLS, …) is the fact a tenant admin can act on.
  const cause = status ? undefined : networkCauseOf(err, u.url ?? undefined);
  return new AppError(
    ErrorCode.UPSTREAM_UNAVAILABLE,
    `Upstream ${u.name} is unavailable${status}${cause ? `: ${cause}` : ""}; try again later.`,
    { upstream: u.name, ...(cause ? { cause } : {}) },
  );
}
