// Agents authenticating with JWTs from the tenant's identity provider (a real oidc-provider
// issuing RFC 8707 audience-bound JWT access tokens): issuer, audience and signature checked,
// claims mapped to roles that the policy names, RFC 9728 metadata naming the issuer.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CC_CLIENT, RESOURCE_SCOPE, startAuthServer } from "../fixtures/oauth/auth-server.mjs";
import { connectAgent, errorData, expectThrows, firstText, rawMcp } from "../support/agent.js";
import { printLogsOnFailure } from "../support/hooks.js";
import { type Fixture, startFixture } from "../support/processes.js";
import { Stack } from "../support/stack.js";

printLogsOnFailure();

type AuthServer = Awaited<ReturnType<typeof startAuthServer>>;

let stack: Stack;
let alpha: Fixture;
let as: AuthServer;
let stranger: AuthServer;
let gatewayUrl: string;
const T = "jwt-tenant";

async function clientCredentialsToken(server: AuthServer, resource: string): Promise<string> {
  const res = await fetch(`${server.issuer}/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${CC_CLIENT.id}:${CC_CLIENT.secret}`).toString("base64")}`,
    },
    body: new URLSearchParams({ grant_type: "client_credentials", resource, scope: RESOURCE_SCOPE }),
  });
  const body = (await res.json()) as { access_token?: string };
  if (!res.ok || !body.access_token)
    throw new Error(`token request failed: ${res.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

beforeAll(async () => {
  [alpha, as, stranger] = await Promise.all([
    startFixture("tools-server.mjs", ["--name", "alpha"]),
    startAuthServer({ accessTokenTtl: 300 }),
    startAuthServer({ accessTokenTtl: 300 }),
  ]);
  stack = await Stack.start({ gateways: 2 });
  const tenant = await stack.admin.createTenant(T);
  gatewayUrl = tenant.gatewayUrl;
  await stack.admin.createUpstream(T, { name: "alpha", url: alpha.url });
  await stack.admin.ok("POST", `/v1/tenants/${T}/identity-providers`, {
    name: "test-as",
    issuer: as.issuer,
    claimMappings: [{ claim: "client_id", value: CC_CLIENT.id, role: "machine" }],
  });
  await stack.admin.putPolicy(T, {
    defaultEffect: "deny",
    rules: [
      {
        id: "machines-echo",
        effect: "allow",
        principals: ["role:machine"],
        upstreams: ["alpha"],
        tools: ["echo"],
      },
    ],
  });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await as?.close();
  await stranger?.close();
});

describe("JWT agents", () => {
  it("the tenant's gateway URL is the audience, on PUBLIC_GATEWAY_URL", () => {
    expect(gatewayUrl).toBe(`${stack.publicGatewayUrl}/t/${T}/mcp`);
  });

  it("accepts a token of the tenant's issuer for the tenant's URL, on both nodes, mapping claims to roles", async () => {
    const token = await clientCredentialsToken(as, gatewayUrl);
    for (const node of [0, 1]) {
      const agent = await connectAgent(stack.mcpUrl(T, undefined, node), { token });
      try {
        const names = (await agent.client.listTools()).tools.map((t) => t.name);
        expect(names).toEqual(["alpha_echo"]);
        expect(
          firstText(await agent.client.callTool({ name: "alpha_echo", arguments: { text: "jwt" } })),
        ).toBe("alpha:echo:jwt");
        const err = await expectThrows(() =>
          agent.client.callTool({ name: "alpha_get_secret", arguments: {} }),
        );
        expect(errorData(err)?.code).toBe("DENIED_BY_POLICY");
      } finally {
        await agent.close();
      }
    }
  });

  const initialize = (token: string) =>
    rawMcp(
      stack.mcpUrl(T),
      {
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-11-25",
          capabilities: {},
          clientInfo: { name: "jwt", version: "1" },
        },
      },
      { token },
    );

  it("refuses a token minted for another audience with 401", async () => {
    const token = await clientCredentialsToken(as, "http://127.0.0.1:9/t/other/mcp");
    const res = await initialize(token);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate") ?? "").toContain("resource_metadata=");
  });

  it("refuses a token from an issuer the tenant does not trust with 401", async () => {
    const res = await initialize(await clientCredentialsToken(stranger, gatewayUrl));
    expect(res.status).toBe(401);
  });

  it("refuses a token whose signature was tampered with", async () => {
    const token = await clientCredentialsToken(as, gatewayUrl);
    const [h, p, s] = token.split(".");
    const flipped = `${s!.slice(0, -2)}${s!.endsWith("AA") ? "BB" : "AA"}`;
    expect((await initialize(`${h}.${p}.${flipped}`)).status).toBe(401);
  });

  it("publishes RFC 9728 metadata naming the tenant's issuer", async () => {
    const res = await fetch(`${stack.gateways[0]!.url}/.well-known/oauth-protected-resource/t/${T}/mcp`);
    expect(res.status).toBe(200);
    const meta = (await res.json()) as { resource: string; authorization_servers: string[] };
    expect(meta.resource).toBe(gatewayUrl);
    expect(meta.authorization_servers).toContain(as.issuer);
  });
});
