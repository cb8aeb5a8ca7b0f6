// Auth, policy and hot config across two gateway nodes: allow/deny/hidden, tenant isolation,
// revocation within 1 s on every node, config changes seen by both nodes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CreatedKey, PolicyDocument } from "../support/admin-client.js";
import { connectAgent, errorData, expectThrows, firstText, rawInitialize, rawMcp } from "../support/agent.js";
import { printLogsOnFailure } from "../support/hooks.js";
import { type Fixture, sleep, startFixture, waitFor } from "../support/processes.js";
import { Stack } from "../support/stack.js";

printLogsOnFailure();

let stack: Stack;
let alpha: Fixture;
let beta: Fixture;
let scout: CreatedKey;
let ops: CreatedKey;
let bKey: CreatedKey;
const A = "tenant-a";
const B = "tenant-b";

const POLICY: PolicyDocument = {
  defaultEffect: "deny",
  rules: [
    {
      id: "research-read",
      effect: "allow",
      principals: ["role:research"],
      upstreams: ["alpha"],
      tools: ["echo", "get_*", "whoami"],
    },
    {
      id: "no-secrets-for-scout",
      effect: "deny",
      principals: ["agent:scout"],
      upstreams: ["alpha"],
      tools: ["get_secret"],
    },
    { id: "ops-all", effect: "allow", principals: ["role:ops"], upstreams: ["alpha"] },
    {
      id: "ops-never-delete-admin",
      effect: "deny",
      principals: ["role:ops"],
      upstreams: ["alpha"],
      tools: ["delete_user"],
      when: "args.id == 'admin'",
    },
  ],
};

beforeAll(async () => {
  [alpha, beta] = await Promise.all([
    startFixture("tools-server.mjs", ["--name", "alpha"]),
    startFixture("tools-server.mjs", ["--name", "beta"]),
  ]);
  stack = await Stack.start({ gateways: 2 });
  await stack.admin.createTenant(A);
  await stack.admin.createUpstream(A, { name: "alpha", url: alpha.url });
  await stack.admin.putPolicy(A, POLICY);
  scout = await stack.admin.createKey(A, { name: "scout", agent: "scout", roles: ["research"] });
  ops = await stack.admin.createKey(A, { name: "ops", agent: "opsbot", roles: ["ops"] });

  await stack.admin.createTenant(B);
  await stack.admin.createUpstream(B, { name: "beta", url: beta.url });
  await stack.admin.putPolicy(B, { defaultEffect: "allow", rules: [] });
  bKey = await stack.admin.createKey(B, { name: "b-agent" });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

const toolNames = async (url: string, token: string) => {
  const agent = await connectAgent(url, { token });
  try {
    return (await agent.client.listTools()).tools.map((t) => t.name);
  } finally {
    await agent.close();
  }
};

/** tools/list names over raw HTTP in an existing session. */
async function rawToolNames(url: string, token: string, sessionId: string): Promise<string[]> {
  const res = await rawMcp(
    url,
    { jsonrpc: "2.0", id: 7, method: "tools/list" },
    {
      token,
      sessionId,
      protocolVersion: "2025-11-25",
    },
  );
  const reply = res.messages.find((m) => m.id === 7) as
    | { result?: { tools?: Array<{ name: string }> } }
    | undefined;
  if (!reply?.result?.tools)
    throw new Error(`tools/list failed: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  return reply.result.tools.map((t) => t.name);
}

interface Propagation {
  /** Send time (ms after the change) of the last request still answered the old way. */
  lastOldSentAfterMs: number | null;
  /** Send and answer times of the first request answered the new way. */
  firstNewSentAfterMs: number | null;
  firstNewAnsweredAfterMs: number | null;
}

/**
 * Probes until `isNew()` is true (or 5 s). Timing by send time keeps the measure honest on a
 * loaded machine: a request *sent* 1 s after the change must see it, however long it then takes.
 */
async function propagation(since: number, isNew: () => Promise<boolean>): Promise<Propagation> {
  const out: Propagation = {
    lastOldSentAfterMs: null,
    firstNewSentAfterMs: null,
    firstNewAnsweredAfterMs: null,
  };
  while (Date.now() - since < 5000) {
    const sent = Date.now() - since;
    if (await isNew()) {
      out.firstNewSentAfterMs = sent;
      out.firstNewAnsweredAfterMs = Date.now() - since;
      return out;
    }
    out.lastOldSentAfterMs = sent;
    await sleep(20);
  }
  return out;
}

function report(what: string, seen: Propagation[]): void {
  const line = seen
    .map(
      (p, node) =>
        `node ${node}: last old answer to a request sent at +${p.lastOldSentAfterMs ?? "-"} ms, ` +
        `first new at +${p.firstNewSentAfterMs ?? "never"} ms (answered +${p.firstNewAnsweredAfterMs ?? "-"} ms)`,
    )
    .join("; ");
  console.log(`${what}: ${line}`);
}

describe("policy", () => {
  it("lists only the tools a principal may call (deny hides, default deny hides)", async () => {
    const names = await toolNames(stack.mcpUrl(A), scout.key);
    expect(names).toEqual(expect.arrayContaining(["alpha_echo", "alpha_whoami"]));
    expect(names).not.toContain("alpha_get_secret"); // explicit deny for agent:scout
    expect(names).not.toContain("alpha_delete_user"); // no allow: default deny
    expect(names).not.toContain("alpha_slow");
  });

  it("allows what a rule allows", async () => {
    const agent = await connectAgent(stack.mcpUrl(A), { token: scout.key });
    try {
      expect(firstText(await agent.client.callTool({ name: "alpha_echo", arguments: { text: "ok" } }))).toBe(
        "alpha:echo:ok",
      );
    } finally {
      await agent.close();
    }
  });

  it("refuses a denied call with DENIED_BY_POLICY naming the deciding rule (deny beats allow)", async () => {
    const agent = await connectAgent(stack.mcpUrl(A), { token: scout.key });
    try {
      const err = await expectThrows(() =>
        agent.client.callTool({ name: "alpha_get_secret", arguments: {} }),
      );
      expect(errorData(err)).toMatchObject({ code: "DENIED_BY_POLICY", ruleId: "no-secrets-for-scout" });
      expect(JSON.stringify(err)).not.toContain("fixture-secret");
    } finally {
      await agent.close();
    }
  });

  it("refuses a call no rule allows with DENIED_BY_POLICY", async () => {
    const agent = await connectAgent(stack.mcpUrl(A), { token: scout.key });
    try {
      const err = await expectThrows(() =>
        agent.client.callTool({ name: "alpha_delete_user", arguments: { id: "x" } }),
      );
      expect(errorData(err)?.code).toBe("DENIED_BY_POLICY");
    } finally {
      await agent.close();
    }
  });

  it("evaluates `when` over the call's arguments", async () => {
    const agent = await connectAgent(stack.mcpUrl(A), { token: ops.key });
    try {
      const ok = await agent.client.callTool({ name: "alpha_delete_user", arguments: { id: "bob" } });
      expect(firstText(ok)).toBe("deleted bob");
      const err = await expectThrows(() =>
        agent.client.callTool({ name: "alpha_delete_user", arguments: { id: "admin" } }),
      );
      expect(errorData(err)).toMatchObject({ code: "DENIED_BY_POLICY", ruleId: "ops-never-delete-admin" });
    } finally {
      await agent.close();
    }
  });
});

describe("authentication and tenant isolation", () => {
  const init = (url: string, token?: string) =>
    rawMcp(
      url,
      {
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-11-25",
          capabilities: {},
          clientInfo: { name: "probe", version: "1" },
        },
      },
      token ? { token } : {},
    );

  it("answers no credentials with 401 and a WWW-Authenticate pointing at the RFC 9728 metadata", async () => {
    const res = await init(stack.mcpUrl(A));
    expect(res.status).toBe(401);
    const challenge = res.headers.get("www-authenticate") ?? "";
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain(`resource_metadata="`);
    expect(challenge).toContain(`/.well-known/oauth-protected-resource/t/${A}/mcp`);
    const meta = await fetch(`${stack.gateways[0]!.url}/.well-known/oauth-protected-resource/t/${A}/mcp`);
    expect(meta.status).toBe(200);
    expect(((await meta.json()) as { resource?: string }).resource).toContain(`/t/${A}/mcp`);
  });

  it("answers tenant A's key on tenant B exactly like an unknown key", async () => {
    const foreign = await init(stack.mcpUrl(B), scout.key);
    const unknown = await init(stack.mcpUrl(B), `mgw_${"x".repeat(40)}`);
    expect(foreign.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(foreign.headers.get("www-authenticate")).toBe(unknown.headers.get("www-authenticate"));
    const normalize = (t: string) => t.replace(/"(requestId|request_id|traceId)":"[^"]*"/g, "");
    expect(normalize(foreign.text)).toBe(normalize(unknown.text));
    // And B's own key works there, but not on A.
    expect((await init(stack.mcpUrl(B), bKey.key)).status).toBe(200);
    expect((await init(stack.mcpUrl(A), bKey.key)).status).toBe(401);
  });

  it("refuses a key past its expiresAt", async () => {
    const expiring = await stack.admin.createKey(A, {
      name: "short-lived",
      roles: ["research"],
      expiresAt: new Date(Date.now() + 2500).toISOString(),
    });
    expect((await init(stack.mcpUrl(A), expiring.key)).status).toBe(200);
    await waitFor(
      "the key to expire",
      async () => (await init(stack.mcpUrl(A, undefined, 1), expiring.key)).status === 401,
      {
        timeoutMs: 8000,
        intervalMs: 250,
      },
    );
  });

  it("keeps anonymous access off unless the tenant turns it on", async () => {
    expect((await init(stack.mcpUrl(B))).status).toBe(401);
  });

  it("binds a session to its principal: another key presenting it gets 404", async () => {
    const { sessionId } = await rawInitialize(stack.mcpUrl(A), { token: scout.key });
    const list = { jsonrpc: "2.0", id: 2, method: "tools/list" };
    const own = await rawMcp(stack.mcpUrl(A), list, {
      token: scout.key,
      sessionId,
      protocolVersion: "2025-11-25",
    });
    expect(own.status).toBe(200);
    const stolen = await rawMcp(stack.mcpUrl(A), list, {
      token: ops.key,
      sessionId,
      protocolVersion: "2025-11-25",
    });
    expect(stolen.status).toBe(404);
    const stolenOtherNode = await rawMcp(stack.mcpUrl(A, undefined, 1), list, {
      token: ops.key,
      sessionId,
      protocolVersion: "2025-11-25",
    });
    expect(stolenOtherNode.status).toBe(404);
  });

  it("rejects a foreign Origin with 403", async () => {
    const res = await rawMcp(
      stack.mcpUrl(A),
      {
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-11-25",
          capabilities: {},
          clientInfo: { name: "probe", version: "1" },
        },
      },
      { token: scout.key, headers: { origin: "https://evil.example.com" } },
    );
    expect(res.status).toBe(403);
  });
});

describe("hot config across both nodes", () => {
  it("revokes a key on both nodes within 1 s, open sessions included", async () => {
    const key = await stack.admin.createKey(A, { name: "doomed", roles: ["research"] });
    const sessions: string[] = [];
    // Both nodes know the key (snapshot loaded) and hold a session for it.
    for (const node of [0, 1]) {
      const { sessionId } = await waitFor(`node ${node} to accept the new key`, async () => {
        try {
          return await rawInitialize(stack.mcpUrl(A, undefined, node), { token: key.key });
        } catch {
          return undefined;
        }
      });
      sessions.push(sessionId);
    }
    const list = { jsonrpc: "2.0", id: 9, method: "tools/list" };
    await stack.admin.revokeKey(A, key.id);
    const revokedAt = Date.now();
    const seen = await Promise.all(
      [0, 1].map((node) =>
        propagation(revokedAt, async () => {
          const res = await rawMcp(stack.mcpUrl(A, undefined, node), list, {
            token: key.key,
            sessionId: sessions[node],
            protocolVersion: "2025-11-25",
          });
          return res.status === 401;
        }),
      ),
    );
    report("revocation", seen);
    for (const p of seen) {
      expect(p.firstNewSentAfterMs).not.toBeNull();
      // No request sent 1 s or more after the revocation was served with the revoked key.
      expect(p.lastOldSentAfterMs ?? -1).toBeLessThan(1000);
    }
    // A fresh initialize with it is refused too.
    for (const node of [0, 1]) {
      const res = await rawMcp(
        stack.mcpUrl(A, undefined, node),
        {
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: {
            protocolVersion: "2025-11-25",
            capabilities: {},
            clientInfo: { name: "p", version: "1" },
          },
        },
        { token: key.key },
      );
      expect(res.status).toBe(401);
    }
  });

  it("applies a policy change on both nodes within 1 s", async () => {
    // Both nodes serve scout (one open session each), with get_secret hidden.
    const sessions: string[] = [];
    for (const node of [0, 1]) {
      const { sessionId } = await rawInitialize(stack.mcpUrl(A, undefined, node), { token: scout.key });
      sessions.push(sessionId);
      expect(await rawToolNames(stack.mcpUrl(A, undefined, node), scout.key, sessionId)).not.toContain(
        "alpha_get_secret",
      );
    }
    await stack.admin.putPolicy(A, {
      ...POLICY,
      rules: POLICY.rules.filter((r) => r.id !== "no-secrets-for-scout"),
    });
    const changedAt = Date.now();
    const seen = await Promise.all(
      [0, 1].map((node) =>
        propagation(changedAt, async () =>
          (await rawToolNames(stack.mcpUrl(A, undefined, node), scout.key, sessions[node]!)).includes(
            "alpha_get_secret",
          ),
        ),
      ),
    );
    report("policy change", seen);
    for (const p of seen) {
      expect(p.firstNewSentAfterMs).not.toBeNull();
      expect(p.lastOldSentAfterMs ?? -1).toBeLessThan(1000);
    }
    const agent = await connectAgent(stack.mcpUrl(A, undefined, 1), { token: scout.key });
    try {
      expect(firstText(await agent.client.callTool({ name: "alpha_get_secret", arguments: {} }))).toBe(
        "fixture-secret-4242",
      );
    } finally {
      await agent.close();
    }
    await stack.admin.putPolicy(A, POLICY);
  });

  it("disabling an upstream removes its tools on both nodes; enabling brings them back", async () => {
    await stack.admin.patchUpstream(A, "alpha", { enabled: false });
    for (const node of [0, 1]) {
      await waitFor(
        `node ${node} to drop alpha's tools`,
        async () => !(await toolNames(stack.mcpUrl(A, undefined, node), ops.key)).includes("alpha_echo"),
        { timeoutMs: 5000, intervalMs: 50 },
      );
    }
    await stack.admin.patchUpstream(A, "alpha", { enabled: true });
    for (const node of [0, 1]) {
      await waitFor(
        `node ${node} to list alpha's tools again`,
        async () => (await toolNames(stack.mcpUrl(A, undefined, node), ops.key)).includes("alpha_echo"),
        { timeoutMs: 5000, intervalMs: 50 },
      );
    }
  });

  it("changing a tool prefix renames the tools on both nodes", async () => {
    await stack.admin.patchUpstream(A, "alpha", { toolPrefix: "al_" });
    try {
      for (const node of [0, 1]) {
        await waitFor(
          `node ${node} to list al_echo`,
          async () => (await toolNames(stack.mcpUrl(A, undefined, node), ops.key)).includes("al_echo"),
          { timeoutMs: 5000, intervalMs: 50 },
        );
      }
    } finally {
      await stack.admin.patchUpstream(A, "alpha", { toolPrefix: "alpha_" });
    }
  });
});
