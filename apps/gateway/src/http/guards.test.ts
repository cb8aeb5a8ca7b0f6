import { describe, expect, it } from "vitest";
import { allowedHostSet, hostnameOf } from "./guards.js";

describe("host guard", () => {
  it("knows loopback, the public host and configured extras", () => {
    const set = allowedHostSet("https://gw.example.com", ["lb.internal:8443"]);
    for (const h of [
      "localhost:8080",
      "127.0.0.1",
      "[::1]:9",
      "gw.example.com",
      "GW.example.com:443",
      "lb.internal",
    ]) {
      expect(set.has(hostnameOf(h) ?? ""), h).toBe(true);
    }
    for (const h of ["evil.example", "gw.example.com.evil.example", "localhost.evil"]) {
      expect(set.has(hostnameOf(h) ?? ""), h).toBe(false);
    }
  });

  it("treats malformed Host headers as foreign", () => {
    expect(hostnameOf("a b")).toBeNull();
  });
});
