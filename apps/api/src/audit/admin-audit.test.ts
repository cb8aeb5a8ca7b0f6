import { SECRET_MASK } from "@gatehouse/shared";
import { describe, expect, test } from "vitest";
import { adminAction, redactSecrets } from "./admin-audit.js";

describe("adminAction", () => {
  test.each([
    ["POST", "/v1/tenants", "tenant.create"],
    ["PATCH", "/v1/tenants/:tenant", "tenant.update"],
    ["DELETE", "/v1/tenants/:tenant", "tenant.delete"],
    ["POST", "/v1/tenants/:tenant/upstreams", "upstream.create"],
    ["PATCH", "/v1/tenants/:tenant/upstreams/:name", "upstream.update"],
    ["DELETE", "/v1/tenants/:tenant/upstreams/:name", "upstream.delete"],
    ["POST", "/v1/tenants/:tenant/api-keys", "api-key.create"],
    ["DELETE", "/v1/tenants/:tenant/api-keys/:id", "api-key.delete"],
    ["PATCH", "/v1/tenants/:tenant/identity-providers/:id", "identity-provider.update"],
    ["PUT", "/v1/tenants/:tenant/policy", "policy.update"],
    ["POST", "/v1/tenants/:tenant/tokens", "token.create"],
    ["POST", "/v1/tenants/:tenant/oauth-clients", "oauth-client.create"],
    ["POST", "/v1/tenants/:tenant/upstreams/:name/connect", "upstream.connect"],
    ["POST", "/v1/tenants/:tenant/upstreams/:name/credentials/refresh", "upstream.credential.refresh"],
    ["DELETE", "/v1/tenants/:tenant/upstreams/:name/credentials/:credentialId", "upstream.credential.delete"],
  ])("%s %s → %s", (method, route, action) => {
    expect(adminAction(method, route)).toBe(action);
  });
});

describe("redactSecrets", () => {
  test("masks secret fields, drops sealed fields and hashes, keeps masks and the rest", () => {
    const out = redactSecrets({
      id: "u1",
      key: "mgw_plaintext",
      token: SECRET_MASK,
      auth: { mode: "bearer", token: "s3cr3t" },
      clientSecret: "cs",
      headersSealed: "v1.sealed",
      hash: "abc",
      keyHash: "def",
      headers: { "X-Api-Key": SECRET_MASK },
      claimMappings: [{ claim: "groups", value: "admins", role: "admin" }],
      expiresAt: null,
      nested: [{ refreshToken: "rt", enabled: true }],
    });
    expect(out).toEqual({
      id: "u1",
      key: SECRET_MASK,
      token: SECRET_MASK,
      auth: { mode: "bearer", token: SECRET_MASK },
      clientSecret: SECRET_MASK,
      headers: { "X-Api-Key": SECRET_MASK },
      claimMappings: [{ claim: "groups", value: "admins", role: "admin" }],
      expiresAt: null,
      nested: [{ refreshToken: SECRET_MASK, enabled: true }],
    });
  });

  test("masks credentials in URL query strings", () => {
    const out = redactSecrets({
      authorizationUrl: "https://as.example/authorize?client_id=c&state=xyz123&code_challenge=abc",
      url: "https://mcp.example/mcp",
    }) as Record<string, string>;
    expect(out.authorizationUrl).not.toContain("xyz123");
    expect(out.authorizationUrl).toContain("client_id=c");
    expect(out.authorizationUrl).toContain("code_challenge=abc");
    expect(out.url).toBe("https://mcp.example/mcp");
  });
});
