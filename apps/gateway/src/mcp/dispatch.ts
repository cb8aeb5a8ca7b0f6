import { createHash } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { AppError, ErrorCode, type UpstreamSnapshot } from "@gatehouse/shared";
import type { Logger } from "pino";
import type { CoreMetrics } from "../metrics/metrics.js";
import type { CircuitBreakers } from "../ops/circuit-breaker.js";
import type { GatewayMetrics } from "../ops/metrics.js";
import type { ToolCallSpan, Tracing, UpstreamSpan } from "../ops/tracing.js";
import type { AuditSink, RateLimiter } from "../ports.js";
import { type LinkRequestOptions, toAppError, type UpstreamLink } from "../upstream/upstream-client.js";
import type { UpstreamManager } from "../upstream/upstream-manager.js";
import {
  CatalogUnavailableError,
  type ListKind,
  listSignature,
  mergedList,
  namespaceContent,
  page,
  reachableUpstreams,
  resolveName,
  resolveUri,
  type View,
} from "./aggregate.js";
import type { LocalSession, SessionRegistry } from "./local-session.js";
import { GATEWAY_SERVER_INFO, gatewayCapabilities, invalidParams, isModernMetaKey } from "./protocol.js";

type Json = Record<string, unknown>;

export interface DispatchDeps {
  upstreams: UpstreamManager;
  sessions: SessionRegistry;
  rateLimiter: RateLimiter;
  audit: AuditSink;
  metrics: CoreMetrics;
  logger: Logger;
  /** One breaker per `${tenantId}/${upstream}` around every upstream request. */
  breakers: CircuitBreakers;
  tracing: Tracing;
  opsMetrics: GatewayMetrics;
}

/** One JSON-RPC request being served. */
export interface RequestContext {
  view: View;
  /** Null for 2026-07-28 (stateless) callers. */
  session: LocalSession | null;
  modern: boolean;
  requestId: string;
  /** Logger of this request (carries its request id). */
  log: Logger;
  /** The agent's HTTP request headers (a `traceparent` there parents our span). */
  httpHeaders: IncomingHttpHeaders;
  id: string | number;
  signal: AbortSignal;
  /** Sends a request-related message (progress, logging, server-to-client requests) before the response. */
  send(message: unknown): boolean;
}

/** RFC 5424 severities (MCP "Logging"). */
const LOG_LEVELS = new Set(["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]);

const LIST_METHODS: Record<string, { kind: ListKind; field: string }> = {
  "tools/list": { kind: "tools", field: "tools" },
  "prompts/list": { kind: "prompts", field: "prompts" },
  "resources/list": { kind: "resources", field: "resources" },
  "resources/templates/list": { kind: "resourceTemplates", field: "resourceTemplates" },
};

function asObject(v: unknown): Json {
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {};
}

/** Params as they go upstream: the caller's progress token and 2026 envelope keys removed (the SDK sets its own). */
function forwardParams(params: Json, replace: Json): Json {
  const out: Json = { ...params, ...replace };
  const meta = asObject(params._meta);
  const kept: Json = {};
  for (const [k, v] of Object.entries(meta)) if (k !== "progressToken" && !isModernMetaKey(k)) kept[k] = v;
  if (Object.keys(kept).length > 0) out._meta = kept;
  else delete out._meta;
  return out;
}

function stripEra(result: Json): Json {
  const { resultType: _r, ttlMs: _t, cacheScope: _c, ...rest } = result;
  return rest;
}

export class Dispatcher {
  constructor(private readonly deps: DispatchDeps) {}

  async dispatch(ctx: RequestContext, method: string, rawParams: unknown): Promise<Json> {
    const params = asObject(rawParams);
    const list = LIST_METHODS[method];
    if (list) return await this.list(ctx, method, list.kind, list.field, params);
    switch (method) {
      case "ping":
        return {};
      case "tools/call":
        return await this.callTool(ctx, params);
      case "prompts/get":
        return await this.getPrompt(ctx, params);
      case "resources/read":
        return await this.readResource(ctx, params);
      case "resources/subscribe":
      case "resources/unsubscribe":
        return await this.subscription(ctx, method, params);
      case "completion/complete":
        return await this.complete(ctx, params);
      case "logging/setLevel":
        return await this.setLevel(ctx, params);
      default:
        throw new AppError(
          ErrorCode.METHOD_NOT_FOUND,
          `Method ${JSON.stringify(method)} is not supported by the gateway.`,
        );
    }
  }

  /** The server/discover result (2026-07-28, "server/discover"). */
  discover(): Json {
    return {
      supportedVersions: ["2026-07-28"],
      capabilities: gatewayCapabilities(),
      ttlMs: 0,
      cacheScope: "public",
      _meta: { "io.modelcontextprotocol/serverInfo": GATEWAY_SERVER_INFO },
    };
  }

  private async list(
    ctx: RequestContext,
    method: string,
    kind: ListKind,
    field: string,
    params: Json,
  ): Promise<Json> {
    const items = await mergedList(ctx.view, this.deps.upstreams, kind, ctx.log);
    if (kind === "tools" && ctx.session && params.cursor === undefined) {
      ctx.session.toolsSignature = listSignature(items);
    }
    const p = page(items, params.cursor, method);
    return { [field]: p.items, ...(p.nextCursor ? { nextCursor: p.nextCursor } : {}) };
  }

  /**
   * Runs `fn` on the right connection (the session's own upstream session, or the node's shared
   * one for stateless callers) under the upstream's circuit breaker: while it is open, calls fail
   * fast with UPSTREAM_UNAVAILABLE naming when to retry. Transport failures and timeouts count
   * against the upstream; any answer (even a JSON-RPC error or `isError`) counts for it; a call
   * the client cancelled counts for neither.
   */
  private async onUpstream<T>(
    ctx: RequestContext,
    u: UpstreamSnapshot,
    fn: (c: UpstreamLink) => Promise<T>,
    full = false,
  ): Promise<T> {
    const tenantId = ctx.view.tenant.id;
    const key = `${tenantId}/${u.name}`;
    const callerId = ctx.view.principal.id;
    const breaker = this.deps.breakers.get(key);
    const callerBreaker = this.deps.breakers.caller(key, callerId);
    const permit = breaker.tryAcquire();
    const callerPermit = permit ? callerBreaker?.tryAcquire() : undefined;
    if (!permit || callerPermit === null) {
      permit?.release();
      const own = !!permit;
      const retryAfterMs = Math.max((own ? callerBreaker?.retryAfterMs : breaker.retryAfterMs) ?? 0, 1000);
      throw new AppError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        own
          ? `Your recent calls to upstream ${u.name} kept running past its timeout, so the gateway is not sending it your calls for now (circuit open for this caller); retry in ${Math.ceil(retryAfterMs / 1000)} s.`
          : `Upstream ${u.name} keeps failing, so the gateway is not sending it calls for now (circuit open); retry in ${Math.ceil(retryAfterMs / 1000)} s.`,
        { upstream: u.name, circuit: "open", scope: own ? "caller" : "upstream", retryAfterMs },
      );
    }
    try {
      this.deps.upstreams.assertReachable(u);
      const result = ctx.session
        ? await this.deps.sessions.withConnection(ctx.session, u, fn, full, ctx.log)
        : await this.deps.upstreams.withShared(u, fn, ctx.view);
      permit.success();
      if (callerPermit) {
        callerPermit.success();
        if (callerBreaker?.state === "closed") this.deps.breakers.forgetCaller(key, callerId);
      }
      this.deps.opsMetrics.setUpstreamUp(tenantId, u.name, true);
      return result;
    } catch (err) {
      const e = toAppError(err, u, "request");
      if (ctx.signal.aborted) {
        permit.release();
        callerPermit?.release();
      } else if (e.code === ErrorCode.TIMEOUT) {
        // How long a call runs is up to its caller (its arguments): a timeout counts against that
        // caller's circuit only, so one caller cannot open the upstream's circuit for the tenant.
        permit.release();
        if (callerPermit) callerPermit.failure();
        else this.deps.breakers.caller(key, callerId, true).tryAcquire()?.failure();
      } else if (e.code === ErrorCode.UPSTREAM_UNAVAILABLE) {
        // Unreachable, refused, HTTP 5xx: the upstream's state, whoever asked.
        permit.failure();
        callerPermit?.release();
        this.deps.opsMetrics.setUpstreamUp(tenantId, u.name, false);
      } else {
        permit.success();
        callerPermit?.success();
      }
      throw e;
    }
  }

  private async forward(
    ctx: RequestContext,
    u: UpstreamSnapshot,
    method: string,
    params: Json,
    progressToken?: unknown,
    trace?: UpstreamSpan,
    full = false,
  ): Promise<Json> {
    const timeout = this.deps.upstreams.timeoutOf(u);
    const options: LinkRequestOptions = {
      timeout,
      resetTimeoutOnProgress: true,
      maxTotalTimeout: Math.max(timeout, 10 * timeout),
      signal: ctx.signal,
      ...(progressToken !== undefined
        ? {
            onprogress: (p: Json) => {
              // The agent's own token goes back to it; the upstream saw a token of ours (no collisions).
              ctx.send({ jsonrpc: "2.0", method: "notifications/progress", params: { ...p, progressToken } });
            },
          }
        : {}),
    };
    return await this.onUpstream(
      ctx,
      u,
      async (conn) => {
        if (!trace) return stripEra(await conn.request(method, params, options));
        // W3C trace context: the HTTP link takes the headers; the SDK's fetch reads the active span.
        const traced = { ...options, headers: trace.inject({}) };
        return stripEra(await trace.run(() => conn.request(method, params, traced)));
      },
      full,
    );
  }

  private async callTool(ctx: RequestContext, params: Json): Promise<Json> {
    const started = performance.now();
    const exposed = params.name;
    if (typeof exposed !== "string" || exposed === "") {
      throw invalidParams("tools/call needs params.name (a string).");
    }
    if (
      params.arguments !== undefined &&
      (typeof params.arguments !== "object" || params.arguments === null || Array.isArray(params.arguments))
    ) {
      throw invalidParams("tools/call params.arguments must be an object.");
    }
    const args = (params.arguments ?? {}) as Json;
    const argsJson = JSON.stringify(args);
    const { tenant, principal } = ctx.view;
    const span: ToolCallSpan = this.deps.tracing.startToolCall({
      tenant: tenant.slug,
      requestId: ctx.requestId,
      incomingHeaders: ctx.httpHeaders,
    });
    const event = {
      tenantId: tenant.id,
      principal,
      agent: principal.agent ?? null,
      requestId: ctx.requestId,
      argsSize: Buffer.byteLength(argsJson),
      argsHash: createHash("sha256").update(argsJson).digest("hex"),
      // The tenant opted in to argument capture; otherwise size and hash only.
      ...(tenant.settings.captureArguments ? { args } : {}),
    };
    let upstreamName: string | null = ctx.view.single?.name ?? null;
    let tool = exposed;
    // The policy's verdict, and only that: null while the policy has not been asked (a name
    // that resolves to nothing). What happened to the call is `outcome`.
    let decision: "allow" | "deny" | null = null;
    let ruleId: string | null = null;
    let upstreamLatencyMs: number | null = null;
    let outcome = "ok";
    let failure: unknown;
    try {
      const resolved = await resolveName(ctx.view, this.deps.upstreams, "tools", exposed).catch(
        (err: unknown) => {
          if (!(err instanceof CatalogUnavailableError)) throw err;
          // The upstream the name points at is down: the policy still decides first (a denied
          // caller learns nothing about it), and the audit names the upstream that was tried.
          upstreamName = err.upstream.name;
          tool = err.unprefixed;
          const verdict = tenant.policy.evaluate({ principal, upstream: upstreamName, tool, args });
          decision = verdict.decision;
          ruleId = verdict.ruleId;
          if (verdict.decision === "deny") return { denied: err.upstream, name: err.unprefixed };
          throw err;
        },
      );
      if (!resolved) {
        outcome = "not_found";
        throw new AppError(
          ErrorCode.TOOL_NOT_FOUND,
          `No tool named ${JSON.stringify(exposed)} is available here; call tools/list for the current tools.`,
          { tool: exposed },
        );
      }
      const u = "denied" in resolved ? resolved.denied : resolved.upstream;
      upstreamName = u.name;
      tool = resolved.name;
      span.setTarget(u.name, tool);
      // Policy (architecture.md step 5): a matching deny wins, hidden tools are denied too.
      const verdict = tenant.policy.evaluate({ principal, upstream: u.name, tool, args });
      decision = verdict.decision;
      ruleId = verdict.ruleId;
      if (verdict.decision === "deny" || "denied" in resolved) {
        decision = "deny";
        outcome = "denied";
        throw new AppError(
          ErrorCode.DENIED_BY_POLICY,
          `The tenant's policy does not allow this call (${verdict.reason}); ask a tenant admin if you need it.`,
          { ruleId: verdict.ruleId, tool: exposed },
        );
      }
      // Rate limits (architecture.md step 6): per key / principal, per tenant, per allowing rule.
      await this.checkLimits(ctx, verdict.ruleId, () => {
        outcome = "rate_limited";
      });

      const meta = asObject(params._meta);
      const upstreamSpan = span.startUpstream(u.name);
      const t0 = performance.now();
      let result: Json;
      try {
        result = await this.forward(
          ctx,
          u,
          "tools/call",
          forwardParams(params, { name: tool }),
          meta.progressToken,
          upstreamSpan,
        );
        upstreamSpan.end();
      } catch (err) {
        upstreamSpan.end(err);
        throw err;
      } finally {
        upstreamLatencyMs = Math.round(performance.now() - t0);
      }
      if (result.isError === true) outcome = "error";
      return namespaceContent(ctx.view, u, result);
    } catch (err) {
      failure = err;
      if (outcome === "ok" || outcome === "error") {
        const code = err instanceof AppError ? err.code : ErrorCode.INTERNAL;
        outcome = ctx.signal.aborted
          ? "cancelled"
          : code === ErrorCode.TIMEOUT
            ? "timeout"
            : code === ErrorCode.UPSTREAM_UNAVAILABLE
              ? "upstream_unavailable"
              : "upstream_error";
      }
      throw err;
    } finally {
      const latencyMs = Math.round(performance.now() - started);
      this.deps.metrics.toolCallSeconds.observe({ outcome }, latencyMs / 1000);
      span.end(outcome, outcome === "denied" || outcome === "rate_limited" ? undefined : failure);
      try {
        this.deps.audit.record({
          ...event,
          upstream: upstreamName,
          tool,
          decision,
          ruleId,
          outcome,
          latencyMs,
          upstreamLatencyMs,
          at: new Date(),
        });
      } catch (err) {
        ctx.log.error({ err }, "audit sink threw");
      }
    }
  }

  /**
   * The buckets a tools/call draws on, in order: the API key's (or, for other principals, none),
   * the tenant's, and the allowing rule's per principal. The first one that is empty refuses the
   * call with RATE_LIMITED and `data.retryAfterMs`.
   */
  private async checkLimits(
    ctx: RequestContext,
    ruleId: string | null,
    onLimited: () => void,
  ): Promise<void> {
    const { tenant, principal } = ctx.view;
    const keyLimit = principal.keyId
      ? (tenant.keysById.get(principal.keyId)?.rateLimitPerMinute ?? null)
      : null;
    if (keyLimit) await this.take(`key:${tenant.id}:${principal.id}`, keyLimit, "API key", onLimited);
    const tenantLimit = tenant.settings.rateLimit?.perMinute;
    if (tenantLimit) await this.take(`tenant:${tenant.id}`, tenantLimit, "tenant", onLimited);
    const ruleLimit = ruleId ? tenant.policy.ruleById(ruleId)?.rateLimit?.perMinute : undefined;
    if (ruleLimit) {
      await this.take(`tool:${tenant.id}:${ruleId}:${principal.id}`, ruleLimit, `rule ${ruleId}`, onLimited);
    }
  }

  private async take(key: string, perMinute: number, what: string, onLimited: () => void): Promise<void> {
    const r = await this.deps.rateLimiter.take(key, perMinute);
    if (!r.ok) {
      onLimited();
      throw new AppError(
        ErrorCode.RATE_LIMITED,
        `Rate limit of the ${what} (${perMinute} calls per minute) reached; retry in ${Math.ceil(r.retryAfterMs / 1000)} s.`,
        { retryAfterMs: r.retryAfterMs, limit: perMinute, scope: key.slice(0, key.indexOf(":")) },
      );
    }
  }

  private async getPrompt(ctx: RequestContext, params: Json): Promise<Json> {
    const exposed = params.name;
    if (typeof exposed !== "string" || exposed === "") {
      throw invalidParams("prompts/get needs params.name (a string).");
    }
    const resolved = await resolveName(ctx.view, this.deps.upstreams, "prompts", exposed);
    if (!resolved || "denied" in resolved) {
      throw new AppError(
        ErrorCode.TOOL_NOT_FOUND,
        `No prompt named ${JSON.stringify(exposed)} is available here.`,
        {
          prompt: exposed,
        },
      );
    }
    const meta = asObject(params._meta);
    const result = await this.forward(
      ctx,
      resolved.upstream,
      "prompts/get",
      forwardParams(params, { name: resolved.name }),
      meta.progressToken,
    );
    return namespaceContent(ctx.view, resolved.upstream, result);
  }

  private resolveResource(ctx: RequestContext, uri: unknown) {
    if (typeof uri !== "string" || uri === "") {
      throw invalidParams("This method needs params.uri (a string).");
    }
    const resolved = resolveUri(ctx.view, uri);
    if (!resolved || !reachableUpstreams(ctx.view).includes(resolved.upstream)) {
      throw new AppError(ErrorCode.TOOL_NOT_FOUND, `No resource ${JSON.stringify(uri)} is available here.`, {
        uri,
      });
    }
    return resolved;
  }

  private async readResource(ctx: RequestContext, params: Json): Promise<Json> {
    const r = this.resolveResource(ctx, params.uri);
    const meta = asObject(params._meta);
    const result = await this.forward(
      ctx,
      r.upstream,
      "resources/read",
      forwardParams(params, { uri: r.name }),
      meta.progressToken,
    );
    return namespaceContent(ctx.view, r.upstream, result);
  }

  private async subscription(ctx: RequestContext, method: string, params: Json): Promise<Json> {
    if (!ctx.session) throw new AppError(ErrorCode.METHOD_NOT_FOUND, `${method} needs a session.`);
    const r = this.resolveResource(ctx, params.uri);
    // Resource updates arrive on the upstream's GET stream: the SDK client's link keeps one.
    return await this.forward(
      ctx,
      r.upstream,
      method,
      forwardParams(params, { uri: r.name }),
      undefined,
      undefined,
      true,
    );
  }

  private async complete(ctx: RequestContext, params: Json): Promise<Json> {
    const ref = asObject(params.ref);
    if (ref.type === "ref/prompt" && typeof ref.name === "string") {
      const resolved = await resolveName(ctx.view, this.deps.upstreams, "prompts", ref.name);
      if (!resolved || "denied" in resolved) {
        throw new AppError(
          ErrorCode.TOOL_NOT_FOUND,
          `No prompt named ${JSON.stringify(ref.name)} is available here.`,
        );
      }
      return await this.forward(
        ctx,
        resolved.upstream,
        "completion/complete",
        forwardParams(params, { ref: { ...ref, name: resolved.name } }),
      );
    }
    if (ref.type === "ref/resource" && typeof ref.uri === "string") {
      const r = this.resolveResource(ctx, ref.uri);
      return await this.forward(
        ctx,
        r.upstream,
        "completion/complete",
        forwardParams(params, { ref: { ...ref, uri: r.name } }),
      );
    }
    throw invalidParams("completion/complete needs params.ref of type ref/prompt or ref/resource.");
  }

  private async setLevel(ctx: RequestContext, params: Json): Promise<Json> {
    if (typeof params.level !== "string" || !LOG_LEVELS.has(params.level)) {
      throw invalidParams(`logging/setLevel needs params.level, one of ${[...LOG_LEVELS].join(", ")}.`);
    }
    if (!ctx.session) return {};
    ctx.session.record.logLevel = params.level;
    await this.deps.sessions.save(ctx.session);
    await Promise.allSettled(
      [...ctx.session.conns.values()].map(async (p) => {
        const c = await p;
        if (c.serverCapabilities().logging) await c.request("logging/setLevel", { level: params.level });
      }),
    );
    return {};
  }
}
