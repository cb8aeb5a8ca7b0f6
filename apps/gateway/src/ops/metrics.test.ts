import { describe, expect, it } from "vitest";
import { createGatewayMetrics } from "./metrics.js";

function lines(text: string, name: string): string[] {
  return text.split("\n").filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

describe("GatewayMetrics", () => {
  it("labels tools only when they are in the upstream's catalog, else 'other'", async () => {
    const m = createGatewayMetrics({ defaultMetrics: false, maxToolsPerUpstream: 2 });
    m.setUpstreamCatalog("acme", "github", ["get_issue", "list_repos", "create_pr"]);
    for (const tool of ["get_issue", "list_repos", "create_pr", "made_up_by_client"]) {
      m.recordToolCall({
        tenant: "acme",
        upstream: "github",
        tool,
        outcome: "ok",
        totalMs: 5,
        upstreamMs: 4,
      });
    }
    m.recordToolCall({
      tenant: "acme",
      upstream: null,
      tool: "nope",
      outcome: "TOOL_NOT_FOUND",
      totalMs: 0.2,
      upstreamMs: null,
    });
    const { body } = await m.render();
    const calls = lines(body, "gatehouse_gateway_tool_calls_total");
    expect(calls).toContain(
      'gatehouse_gateway_tool_calls_total{tenant="acme",upstream="github",tool="get_issue",outcome="ok"} 1',
    );
    expect(calls).toContain(
      'gatehouse_gateway_tool_calls_total{tenant="acme",upstream="github",tool="list_repos",outcome="ok"} 1',
    );
    expect(calls).toContain(
      'gatehouse_gateway_tool_calls_total{tenant="acme",upstream="github",tool="other",outcome="ok"} 2',
    );
    expect(calls).toContain(
      'gatehouse_gateway_tool_calls_total{tenant="acme",upstream="none",tool="none",outcome="TOOL_NOT_FOUND"} 1',
    );
    expect(calls).toHaveLength(4);
  });

  it("splits gateway-own time from upstream time", async () => {
    const m = createGatewayMetrics({ defaultMetrics: false });
    m.recordToolCall({ tenant: "t", upstream: "u", tool: "x", outcome: "ok", totalMs: 10.4, upstreamMs: 10 });
    const { body } = await m.render();
    expect(body).toMatch(/gatehouse_gateway_overhead_seconds_bucket\{le="0.0005",tenant="t"\} 1/);
    expect(body).toMatch(/gatehouse_gateway_overhead_seconds_bucket\{le="0.00025",tenant="t"\} 0/);
    expect(body).toMatch(/gatehouse_gateway_upstream_duration_seconds_sum\{tenant="t",upstream="u"\} 0.01\n/);
    expect(body).toMatch(
      /gatehouse_gateway_tool_call_duration_seconds_count\{tenant="t",upstream="u",outcome="ok"\} 1/,
    );
  });

  it("caps tenants and HTTP methods", async () => {
    const m = createGatewayMetrics({ defaultMetrics: false, maxTenants: 2 });
    for (const t of ["a", "b", "c", "d"]) m.recordHttpRequest(t, "POST", 200);
    m.recordHttpRequest("a", "BREW", 405);
    m.recordHttpRequest(null, "GET", 404);
    const reqs = lines((await m.render()).body, "gatehouse_gateway_requests_total");
    expect(reqs).toEqual(
      expect.arrayContaining([
        'gatehouse_gateway_requests_total{tenant="a",method="POST",status="200"} 1',
        'gatehouse_gateway_requests_total{tenant="b",method="POST",status="200"} 1',
        'gatehouse_gateway_requests_total{tenant="other",method="POST",status="200"} 2',
        'gatehouse_gateway_requests_total{tenant="a",method="other",status="405"} 1',
        'gatehouse_gateway_requests_total{tenant="none",method="GET",status="404"} 1',
      ]),
    );
    expect(reqs).toHaveLength(5);
  });

  it("exposes gauges for health, sessions, config, rate limits, bus and audit", async () => {
    const m = createGatewayMetrics({ defaultMetrics: false, defaultLabels: { node: "n1" } });
    m.setUpstreamUp("t", "u", false);
    m.setCircuitState("t", "u", "open");
    m.sessionOpened("t");
    m.sessionOpened("t");
    m.sessionClosed("t");
    m.setConfigVersion("t", 7);
    m.recordRateLimited("t", "key");
    m.rateLimitFallback.set(1);
    m.setBusConnected(true);
    m.auditDropped.inc({ reason: "queue_full" }, 3);
    const { body, contentType } = await m.render();
    expect(contentType).toContain("text/plain");
    for (const expected of [
      'gatehouse_gateway_upstream_up{tenant="t",upstream="u",node="n1"} 0',
      'gatehouse_gateway_upstream_circuit_state{tenant="t",upstream="u",node="n1"} 2',
      'gatehouse_gateway_sessions_open{tenant="t",node="n1"} 1',
      'gatehouse_gateway_config_version{tenant="t",node="n1"} 7',
      'gatehouse_gateway_rate_limit_rejections_total{tenant="t",scope="key",node="n1"} 1',
      'gatehouse_gateway_rate_limit_local_fallback{node="n1"} 1',
      'gatehouse_gateway_bus_connected{node="n1"} 1',
      'gatehouse_gateway_audit_dropped_total{reason="queue_full",node="n1"} 3',
    ]) {
      expect(body).toContain(expected);
    }
    m.forgetTenant("t");
    const after = (await m.render()).body;
    expect(after).not.toContain('gatehouse_gateway_upstream_up{tenant="t"');
    expect(after).not.toContain('gatehouse_gateway_config_version{tenant="t"');
  });

  it("names tenants through the labeler; the catalog stays keyed by tenant id", async () => {
    const m = createGatewayMetrics({ defaultMetrics: false });
    m.setTenantLabeler((id) => (id === "0199-a" ? "acme" : undefined));
    m.setUpstreamCatalog("0199-a", "gh", ["get_issue"]);
    m.recordToolCall({
      tenant: "0199-a",
      upstream: "gh",
      tool: "get_issue",
      outcome: "ok",
      totalMs: 1,
      upstreamMs: 1,
    });
    m.recordToolCall({
      tenant: "0199-b",
      upstream: "gh",
      tool: "get_issue",
      outcome: "ok",
      totalMs: 1,
      upstreamMs: 1,
    });
    const calls = lines((await m.render()).body, "gatehouse_gateway_tool_calls_total");
    expect(calls).toEqual([
      'gatehouse_gateway_tool_calls_total{tenant="acme",upstream="gh",tool="get_issue",outcome="ok"} 1',
      'gatehouse_gateway_tool_calls_total{tenant="0199-b",upstream="gh",tool="other",outcome="ok"} 1',
    ]);
  });

  it("collects process metrics by default, in its own registry", async () => {
    const a = createGatewayMetrics();
    const b = createGatewayMetrics();
    expect((await a.render()).body).toContain("process_resident_memory_bytes");
    expect(a.registry).not.toBe(b.registry);
    // A second set on the same registry shares the metrics instead of throwing "already registered".
    const again = createGatewayMetrics({ registry: a.registry });
    again.setBusConnected(true);
    expect((await a.render()).body).toContain("gatehouse_gateway_bus_connected 1");
    expect((await a.render()).body.match(/^process_resident_memory_bytes /gm)).toHaveLength(1);
  });
});
