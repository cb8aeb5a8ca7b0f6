// stdio upstreams run commands on the gateway node: refused unless the operator sets
// GATEWAY_ALLOW_STDIO=true. Node 0 runs without it, node 1 with it, against the same tenant.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALLOW_ALL } from "../support/admin-client.js";
import { connectAgent, errorData, expectThrows, firstText } from "../support/agent.js";
import { printLogsOnFailure } from "../support/hooks.js";
import { stdioFixtureCommand, waitFor } from "../support/processes.js";
import { Stack } from "../support/stack.js";

printLogsOnFailure();

let stack: Stack;
let key: string;
const T = "stdio";

beforeAll(async () => {
  stack = await Stack.start({
    gateways: 2,
    perGatewayEnv: [{ GATEWAY_ALLOW_STDIO: "false" }, { GATEWAY_ALLOW_STDIO: "true" }],
  });
  await stack.admin.createTenant(T);
  const tools = stdioFixtureCommand("tools-server.mjs", ["--stdio", "--name", "local"]);
  await stack.admin.createUpstream(T, {
    name: "local",
    transport: "stdio",
    command: tools.command,
    args: tools.args,
    env: { FIXTURE_TOKEN: "env-secret-for-stdio" },
  });
  const everything = stdioFixtureCommand("everything.mjs", ["--stdio"]);
  await stack.admin.createUpstream(T, {
    name: "everything",
    transport: "stdio",
    command: everything.command,
    args: everything.args,
  });
  await stack.admin.putPolicy(T, ALLOW_ALL);
  key = (await stack.admin.createKey(T, { name: "agent" })).key;
}, 180_000);

/** The refusal itself: UPSTREAM_UNAVAILABLE for that upstream, naming the operator's switch. */
function expectStdioRefused(err: unknown, upstream: string): void {
  expect(errorData(err)).toMatchObject({ code: "UPSTREAM_UNAVAILABLE", upstream });
  expect((err as Error).message).toContain("GATEWAY_ALLOW_STDIO is off");
}

afterAll(async () => {
  await stack?.stop();
});

describe("stdio upstreams", () => {
  it("are refused on a node without GATEWAY_ALLOW_STDIO=true", async () => {
    const agent = await connectAgent(stack.mcpUrl(T, undefined, 0), { token: key });
    try {
      const names = (await agent.client.listTools()).tools.map((t) => t.name);
      expect(names.some((n) => n.startsWith("local_") || n.startsWith("everything_"))).toBe(false);
      const err = await expectThrows(() =>
        agent.client.callTool({ name: "local_echo", arguments: { text: "x" } }),
      );
      expectStdioRefused(err, "local");
    } finally {
      await agent.close();
    }
  });

  it("run on a node with GATEWAY_ALLOW_STDIO=true, with the upstream's env", async () => {
    const agent = await connectAgent(stack.mcpUrl(T, undefined, 1), { token: key });
    try {
      // Spawning the two processes takes a moment on a busy machine.
      const names = await waitFor(
        "the stdio upstreams' tools",
        async () => {
          const n = (await agent.client.listTools()).tools.map((t) => t.name);
          return n.includes("local_echo") && n.includes("everything_echo") ? n : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      expect(names).toEqual(expect.arrayContaining(["local_echo", "local_whoami", "everything_echo"]));
      expect(
        firstText(await agent.client.callTool({ name: "local_echo", arguments: { text: "pipe" } })),
      ).toBe("local:echo:pipe");
      const who = JSON.parse(
        firstText(await agent.client.callTool({ name: "local_whoami", arguments: {} })),
      ) as {
        transport: string;
        env: { FIXTURE_TOKEN: string | null };
      };
      expect(who.transport).toBe("stdio");
      expect(who.env.FIXTURE_TOKEN).toBe("env-secret-for-stdio");
      const sum = await agent.client.callTool({ name: "everything_get-sum", arguments: { a: 1, b: 2 } });
      expect(firstText(sum)).toContain("3");
    } finally {
      await agent.close();
    }
  });

  it("the single-upstream endpoint of a stdio upstream is refused without the flag too", async () => {
    // The gateway answers initialize itself; what it refuses is reaching the upstream.
    const agent = await connectAgent(stack.mcpUrl(T, "local", 0), { token: key });
    try {
      expectStdioRefused(await expectThrows(() => agent.client.listTools()), "local");
      expectStdioRefused(
        await expectThrows(() => agent.client.callTool({ name: "echo", arguments: { text: "x" } })),
        "local",
      );
    } finally {
      await agent.close();
    }
  });
});
