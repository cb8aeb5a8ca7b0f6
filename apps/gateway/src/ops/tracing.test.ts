import http from "node:http";
import type { AddressInfo } from "node:net";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace";
import { describe, expect, it } from "vitest";
import { disabledTracing, initTracing, injectActiveTraceContext } from "./tracing.js";

describe("tracing", () => {
  it("is off without an endpoint: no spans, headers untouched", async () => {
    const tracing = await initTracing({});
    expect(tracing).toBe(disabledTracing);
    const call = tracing.startToolCall({ tenant: "t", requestId: "r1" });
    const headers = call.startUpstream("github").inject({ accept: "application/json" });
    expect(headers).toEqual({ accept: "application/json" });
    expect(call.traceId).toBe("");
  });

  it("one span per call with the upstream call as a child, traceparent of the child injected", async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = await initTracing({ exporter, serviceVersion: "0.1.0", instanceId: "node-a" });
    try {
      const agentTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
      const call = tracing.startToolCall({
        tenant: "acme",
        requestId: "req-1",
        incomingHeaders: { traceparent: `00-${agentTraceId}-00f067aa0ba902b7-01` },
      });
      call.setTarget("github", "get_issue");
      const upstream = call.startUpstream("github");
      const headers = upstream.inject({} as Record<string, string>);
      upstream.end();
      call.end("ok");

      const spans = exporter.getFinishedSpans();
      expect(spans).toHaveLength(2);
      const [child, root] = spans;
      expect(root!.name).toBe("tools/call get_issue");
      expect(root!.spanContext().traceId).toBe(agentTraceId);
      expect(root!.parentSpanContext?.spanId).toBe("00f067aa0ba902b7");
      expect(root!.attributes).toMatchObject({
        "gatehouse.tenant": "acme",
        "gatehouse.request_id": "req-1",
        "gatehouse.upstream": "github",
        "gen_ai.tool.name": "get_issue",
        "gatehouse.outcome": "ok",
      });
      expect(root!.resource.attributes["service.instance.id"]).toBe("node-a");
      expect(child!.name).toBe("upstream github");
      expect(child!.parentSpanContext?.spanId).toBe(root!.spanContext().spanId);
      expect(headers.traceparent).toBe(`00-${agentTraceId}-${child!.spanContext().spanId}-01`);
      expect(call.traceId).toBe(agentTraceId);

      // The same header from inside run(), as a transport's custom fetch would add it.
      const second = call.startUpstream("github");
      const viaRun = await second.run(async () => {
        await new Promise((r) => setTimeout(r, 1));
        return injectActiveTraceContext(new Headers());
      });
      second.end();
      expect(viaRun.get("traceparent")).toBe(second.inject({} as Record<string, string>).traceparent);
      expect(injectActiveTraceContext({})).toEqual({});
    } finally {
      await tracing.shutdown();
    }
  });

  it("marks failed calls as errors", async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = await initTracing({ exporter });
    try {
      const call = tracing.startToolCall({ tenant: "t", requestId: "r", upstream: "u", tool: "x" });
      call.startUpstream("u").end(new Error("connect ECONNREFUSED"));
      call.end("upstream_unavailable", new Error("connect ECONNREFUSED"));
      const spans = exporter.getFinishedSpans();
      expect(spans.map((s) => s.status.code)).toEqual([2, 2]);
      expect(spans[0]!.events[0]?.name).toBe("exception");
      // Without an incoming traceparent the call starts a new trace.
      expect(spans[1]!.parentSpanContext).toBeUndefined();
    } finally {
      await tracing.shutdown();
    }
  });

  it("exports over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces", async () => {
    const received: Array<{ url: string; body: string }> = [];
    const collector = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => {
        body += c.toString("latin1");
      });
      req.on("end", () => {
        received.push({ url: req.url ?? "", body });
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((r) => collector.listen(0, "127.0.0.1", r));
    const { port } = collector.address() as AddressInfo;
    const tracing = await initTracing({ endpoint: `http://127.0.0.1:${port}/`, serviceName: "gw-test" });
    try {
      const call = tracing.startToolCall({ tenant: "t", requestId: "r", tool: "echo" });
      call.end("ok");
      await tracing.shutdown();
      expect(received).toHaveLength(1);
      expect(received[0]!.url).toBe("/v1/traces");
      expect(received[0]!.body).toContain(call.traceId);
      expect(received[0]!.body).toContain("gw-test");
    } finally {
      collector.close();
    }
  });
});
