import {
  type Context,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import type { SpanExporter } from "@opentelemetry/sdk-trace";

export interface TracingOptions {
  /**
   * OTLP/HTTP base URL (the value of OTEL_EXPORTER_OTLP_ENDPOINT, e.g. `http://collector:4318`).
   * Unset: tracing is off and every helper is a no-op.
   */
  endpoint?: string;
  /** Extra OTLP headers (OTEL_EXPORTER_OTLP_HEADERS, already parsed). */
  headers?: Record<string, string>;
  serviceName?: string;
  serviceVersion?: string;
  /** Node id, recorded as `service.instance.id`. */
  instanceId?: string;
  /** Tests: export here instead of OTLP (tracing is then on even without `endpoint`). */
  exporter?: SpanExporter;
}

/** What the gateway knows about a tools/call when it starts. */
export interface ToolCallSpanInfo {
  tenant: string;
  requestId: string;
  /** JSON-RPC method, `tools/call` by default. */
  method?: string;
  upstream?: string;
  tool?: string;
  /** The agent's request headers: a `traceparent` there makes our span its child. */
  incomingHeaders?: Record<string, string | string[] | undefined>;
}

export interface UpstreamSpan {
  /** Adds `traceparent` (and `tracestate`) of this span to `headers` and returns them. */
  inject<H extends Record<string, string>>(headers: H): H;
  /**
   * Runs `fn` with this span as the active context, so code that cannot take headers per call
   * (an SDK transport's custom `fetch`) can add them with `injectActiveTraceContext`.
   */
  run<T>(fn: () => T): T;
  end(error?: unknown): void;
}

export interface ToolCallSpan {
  /** The trace id (for log lines); empty when tracing is off. */
  readonly traceId: string;
  /** Name the upstream and tool once resolved. */
  setTarget(upstream: string, tool: string): void;
  /** Child span for the request to the upstream. */
  startUpstream(upstream: string): UpstreamSpan;
  /** `outcome` as in the metrics (`ok`, `denied`, …); an error marks the span failed. */
  end(outcome: string, error?: unknown): void;
}

export interface Tracing {
  readonly enabled: boolean;
  startToolCall(info: ToolCallSpanInfo): ToolCallSpan;
  /** Flushes pending spans and stops exporting. */
  shutdown(): Promise<void>;
}

const noopUpstream: UpstreamSpan = { inject: (h) => h, run: (fn) => fn(), end: () => {} };

/**
 * Adds the active span's `traceparent`/`tracestate` to `headers` (a plain object or a fetch
 * `Headers`); a no-op when tracing is off or no span is active. For a custom `fetch` given to
 * the SDK's StreamableHTTPClientTransport, called inside `UpstreamSpan.run`.
 */
export function injectActiveTraceContext<H extends Headers | Record<string, string>>(headers: H): H {
  propagation.inject(context.active(), headers, {
    set(carrier, key, value) {
      if (carrier instanceof Headers) carrier.set(key, value);
      else (carrier as Record<string, string>)[key] = value;
    },
  });
  return headers;
}
const noopCall: ToolCallSpan = {
  traceId: "",
  setTarget: () => {},
  startUpstream: () => noopUpstream,
  end: () => {},
};

/** Tracing that does nothing (the default; costs nothing per call). */
export const disabledTracing: Tracing = {
  enabled: false,
  startToolCall: () => noopCall,
  shutdown: async () => {},
};

/**
 * OpenTelemetry for the gateway, off unless an OTLP endpoint is configured. When on: one SERVER
 * span per tools/call (a child of the agent's `traceparent` if it sent one), a CLIENT child
 * span per upstream request, W3C trace context injected into upstream headers
 * (https://www.w3.org/TR/trace-context/). The SDK is imported only when on.
 */
export async function initTracing(options: TracingOptions = {}): Promise<Tracing> {
  if (!options.endpoint && !options.exporter) return disabledTracing;
  const [
    { TracerProvider, BatchSpanProcessor, SimpleSpanProcessor },
    { W3CTraceContextPropagator },
    resources,
    hooks,
  ] = await Promise.all([
    import("@opentelemetry/sdk-trace"),
    import("@opentelemetry/core"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/context-async-hooks"),
  ]);
  let processor: InstanceType<typeof BatchSpanProcessor> | InstanceType<typeof SimpleSpanProcessor>;
  if (options.exporter) {
    processor = new SimpleSpanProcessor({ exporter: options.exporter });
  } else {
    const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
    // The generic endpoint variable is a base URL; the traces path is appended (OTLP exporter spec).
    const url = `${String(options.endpoint).replace(/\/+$/, "")}/v1/traces`;
    processor = new BatchSpanProcessor({
      exporter: new OTLPTraceExporter({ url, headers: options.headers ?? {} }),
    });
  }
  const provider = new TracerProvider({
    resource: resources.resourceFromAttributes({
      "service.name": options.serviceName ?? "gatehouse-gateway",
      ...(options.serviceVersion ? { "service.version": options.serviceVersion } : {}),
      ...(options.instanceId ? { "service.instance.id": options.instanceId } : {}),
    }),
    spanProcessors: [processor],
  });
  const propagator = new W3CTraceContextPropagator();
  // Global registration lets other code (pino mixins, libraries) see the active span.
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(propagator);
  context.setGlobalContextManager(new hooks.AsyncLocalStorageContextManager().enable());
  const tracer = provider.getTracer("gatehouse-gateway", options.serviceVersion);

  return {
    enabled: true,
    startToolCall: (info) => startCall(tracer, info),
    shutdown: async () => {
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}

function startCall(tracer: Tracer, info: ToolCallSpanInfo): ToolCallSpan {
  const parent = info.incomingHeaders
    ? propagation.extract(ROOT_CONTEXT, info.incomingHeaders, defaultTextMapGetter)
    : ROOT_CONTEXT;
  const method = info.method ?? "tools/call";
  const span = tracer.startSpan(
    info.tool ? `${method} ${info.tool}` : method,
    {
      kind: SpanKind.SERVER,
      attributes: {
        "gatehouse.tenant": info.tenant,
        "gatehouse.request_id": info.requestId,
        "rpc.system": "jsonrpc",
        "rpc.method": method,
        ...(info.upstream ? { "gatehouse.upstream": info.upstream } : {}),
        ...(info.tool ? { "gen_ai.tool.name": info.tool } : {}),
      },
    },
    parent,
  );
  const callContext = trace.setSpan(parent, span);
  return {
    traceId: span.spanContext().traceId,
    setTarget(upstream, tool) {
      span.updateName(`${method} ${tool}`);
      span.setAttributes({ "gatehouse.upstream": upstream, "gen_ai.tool.name": tool });
    },
    startUpstream: (upstream) => startUpstream(tracer, callContext, upstream),
    end(outcome, error) {
      span.setAttribute("gatehouse.outcome", outcome);
      finish(span, error);
    },
  };
}

function startUpstream(tracer: Tracer, parent: Context, upstream: string): UpstreamSpan {
  const span = tracer.startSpan(
    `upstream ${upstream}`,
    { kind: SpanKind.CLIENT, attributes: { "gatehouse.upstream": upstream } },
    parent,
  );
  const ctx = trace.setSpan(parent, span);
  return {
    inject(headers) {
      propagation.inject(ctx, headers, defaultTextMapSetter);
      return headers;
    },
    run: (fn) => context.with(ctx, fn),
    end: (error) => finish(span, error),
  };
}

function finish(span: Span, error: unknown): void {
  if (error !== undefined && error !== null) {
    if (error instanceof Error) span.recordException(error);
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    });
  }
  span.end();
}
