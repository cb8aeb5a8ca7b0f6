// The official MCP conformance suite, run against the conformance fixture directly and through
// the gateway's single-upstream endpoint: every check that passes directly must pass through
// the gateway (issue 3, item 10).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ConformanceResult, passingChecks, runConformance } from "../conformance/run.mjs";
import { printLogsOnFailure } from "../support/hooks.js";
import { type Fixture, startFixture } from "../support/processes.js";
import { Stack } from "../support/stack.js";

printLogsOnFailure();

const log = (m: string) => console.log(`[conformance] ${m}`);
let fixture: Fixture;
let direct: ConformanceResult;

beforeAll(async () => {
  fixture = await startFixture("conformance-server.mjs");
  // The suite's DNS-rebinding check wants a localhost URL; 127.0.0.1 qualifies.
  direct = await runConformance(fixture.url, { log });
  log(`direct: ${direct.passed} passed, ${direct.failed} failed`);
}, 400_000);

afterAll(async () => {
  await fixture?.proc.kill();
});

describe("conformance fixture, directly", () => {
  it("passes every check of the suite", () => {
    const failures = direct.checks.filter((c) => c.status === "FAILURE");
    expect(failures, JSON.stringify(failures, null, 2)).toEqual([]);
    expect(direct.failed).toBe(0);
    // 0.1.16 `--suite all` has 44 checks that can pass; a drop means the fixture regressed.
    expect(direct.passed).toBeGreaterThanOrEqual(44);
  });
});

describe("through the gateway, /t/{tenant}/mcp/{upstream}", () => {
  let stack: Stack;
  let url: string;

  beforeAll(async () => {
    stack = await Stack.start({ gateways: 1 });
    const tenant = await stack.admin.createTenant("conformance", { anonymousAccess: true });
    await stack.admin.createUpstream(tenant.slug, { name: "conf", url: fixture.url });
    // The suite sends no credentials: the tenant lets the principal `anonymous` in.
    await stack.admin.putPolicy(tenant.slug, {
      defaultEffect: "deny",
      rules: [
        { id: "anonymous-conformance", effect: "allow", principals: ["anonymous"], upstreams: ["conf"] },
      ],
    });
    url = stack.mcpUrl(tenant.slug, "conf");
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it("passes every check that the upstream passes directly", async () => {
    const viaGateway = await runConformance(url, { log });
    console.log(
      `conformance totals: direct ${direct.passed} passed, ${direct.failed} failed; ` +
        `through the gateway ${viaGateway.passed} passed, ${viaGateway.failed} failed`,
    );
    const expected = [...passingChecks(direct)].sort();
    const actual = [...passingChecks(viaGateway)].sort();
    const missing = expected.filter((c) => !actual.includes(c));
    const explain = missing.map((id) => {
      const c = viaGateway.checks.find((x) => `${x.scenario}/${x.id}` === id);
      return `${id}: ${c ? `${c.status} ${c.errorMessage ?? ""}` : "not reported"}`;
    });
    expect(missing, `checks passing directly but not through the gateway:\n${explain.join("\n")}`).toEqual(
      [],
    );
    expect(actual).toEqual(expected);
    expect(viaGateway.passed).toBe(direct.passed);
  }, 300_000);
});
