import { describe, expect, it } from "vitest";
import { ConfigError, loadGatewayConfig } from "./gateway.config.js";

describe("gateway config", () => {
  it("applies the documented defaults", () => {
    const c = loadGatewayConfig({});
    expect(c).toMatchObject({
      port: 8080,
      redisKeyPrefix: "gatehouse:",
      publicUrl: "http://localhost:8080",
      publicApiUrl: "http://localhost:4000",
      allowStdio: false,
    });
    expect(c.nodeId).toBeTruthy();
  });

  it("fails fast naming every bad variable", () => {
    let err: unknown;
    try {
      loadGatewayConfig({
        GATEWAY_PORT: "eighty",
        GATEWAY_ALLOW_STDIO: "maybe",
        PUBLIC_GATEWAY_URL: "not a url",
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    for (const name of ["GATEWAY_PORT", "GATEWAY_ALLOW_STDIO", "PUBLIC_GATEWAY_URL"])
      expect(msg).toContain(name);
  });

  it("parses booleans and lists, trims the public URL", () => {
    const c = loadGatewayConfig({
      GATEWAY_ALLOW_STDIO: "true",
      GATEWAY_ALLOWED_HOSTS: "gw.example.com, other.example ",
      PUBLIC_GATEWAY_URL: "https://gw.example.com/",
      PUBLIC_API_URL: "https://api.example.com/",
      GATEWAY_NODE_ID: "n1",
    });
    expect(c.allowStdio).toBe(true);
    expect(c.allowedHosts).toEqual(["gw.example.com", "other.example"]);
    expect(c.publicUrl).toBe("https://gw.example.com");
    expect(c.publicApiUrl).toBe("https://api.example.com");
    expect(c.nodeId).toBe("n1");
  });
});
