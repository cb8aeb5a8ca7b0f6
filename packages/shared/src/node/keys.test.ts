import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  generateAdminToken,
  generateApiKey,
  hashToken,
  looksLikeAdminToken,
  looksLikeApiKey,
  safeEqual,
  verifyToken,
} from "./keys.js";

describe("API keys and admin tokens", () => {
  it("generates mgw_ keys of fixed length with a visible 12-character prefix and a SHA-256 hash", () => {
    const { key, prefix, hash } = generateApiKey();
    expect(key).toMatch(/^mgw_[0-9A-Za-z]{43}$/);
    expect(prefix).toBe(key.slice(0, 12));
    expect(prefix.startsWith("mgw_")).toBe(true);
    expect(hash).toBe(createHash("sha256").update(key).digest("hex"));
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(looksLikeApiKey(key)).toBe(true);
    expect(looksLikeAdminToken(key)).toBe(false);
  });

  it("generates mgt_ admin tokens of the same shape", () => {
    const t = generateAdminToken();
    expect(t.key).toMatch(/^mgt_[0-9A-Za-z]{43}$/);
    expect(t.prefix).toBe(t.key.slice(0, 12));
    expect(t.hash).toBe(hashToken(t.key));
    expect(looksLikeAdminToken(t.key)).toBe(true);
    expect(looksLikeApiKey(t.key)).toBe(false);
  });

  it("never repeats and uses the whole alphabet", () => {
    const keys = new Set(Array.from({ length: 2000 }, () => generateApiKey().key));
    expect(keys.size).toBe(2000);
    const chars = new Set([...keys].flatMap((k) => [...k.slice(4)]));
    expect(chars.size).toBe(62);
  });

  it("looksLikeApiKey rejects near misses", () => {
    const { key } = generateApiKey();
    expect(looksLikeApiKey(key.slice(0, -1))).toBe(false);
    expect(looksLikeApiKey(`${key}x`)).toBe(false);
    expect(looksLikeApiKey(key.replace("mgw_", "MGW_"))).toBe(false);
    expect(looksLikeApiKey(`${key.slice(0, 10)}-${key.slice(11)}`)).toBe(false);
    expect(looksLikeApiKey("eyJhbGciOiJSUzI1NiJ9.e30.sig")).toBe(false);
    expect(looksLikeApiKey("")).toBe(false);
  });

  it("compares in constant time and verifies against a stored hash", () => {
    expect(safeEqual("abc", "abc")).toBe(true);
    expect(safeEqual("abc", "abd")).toBe(false);
    expect(safeEqual("abc", "abcd")).toBe(false);
    expect(safeEqual("", "")).toBe(true);
    const { key, hash } = generateApiKey();
    expect(verifyToken(key, hash)).toBe(true);
    expect(verifyToken(key, hash.toUpperCase())).toBe(true);
    expect(verifyToken(generateApiKey().key, hash)).toBe(false);
  });
});
