import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createSealer, generateSecretsKey, parseSecretsKey, SealingError } from "./sealing.js";

describe("parseSecretsKey", () => {
  const raw = randomBytes(32);

  it("accepts 64 hex characters, base64 and base64url (with or without padding, with whitespace)", () => {
    expect(parseSecretsKey(raw.toString("hex"))).toEqual(raw);
    expect(parseSecretsKey(raw.toString("hex").toUpperCase())).toEqual(raw);
    expect(parseSecretsKey(raw.toString("base64"))).toEqual(raw);
    expect(parseSecretsKey(raw.toString("base64").replace(/=+$/, ""))).toEqual(raw);
    expect(parseSecretsKey(raw.toString("base64url"))).toEqual(raw);
    expect(parseSecretsKey(`  ${raw.toString("hex")}\n`)).toEqual(raw);
  });

  it("rejects anything that is not exactly 32 bytes, with a clear message and without echoing the key", () => {
    const bad = [
      "",
      "abc",
      raw.toString("hex").slice(0, 62),
      randomBytes(31).toString("base64"),
      randomBytes(33).toString("base64url"),
      randomBytes(16).toString("hex"),
      `${raw.toString("base64")}!`,
      "correct horse battery staple correct horse battery staple!",
    ];
    for (const s of bad) {
      expect(() => parseSecretsKey(s)).toThrow(SealingError);
      try {
        parseSecretsKey(s);
      } catch (err) {
        expect((err as Error).message).toContain("must be 32 bytes");
        if (s.length > 8) expect((err as Error).message).not.toContain(s);
      }
    }
  });

  it("generateSecretsKey yields a key parseSecretsKey accepts", () => {
    const k = generateSecretsKey();
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(parseSecretsKey(k)).toHaveLength(32);
    expect(generateSecretsKey()).not.toBe(k);
  });
});

describe("createSealer", () => {
  const sealer = createSealer(generateSecretsKey());

  it("round-trips text, including empty and non-ASCII strings", () => {
    for (const s of ["", "hello", "päßwörd 🔑", "x".repeat(100_000)])
      expect(sealer.unseal(sealer.seal(s))).toBe(s);
  });

  it("writes a versioned envelope with a fresh 12-byte IV every time", () => {
    const a = sealer.seal("same");
    const b = sealer.seal("same");
    expect(a).not.toBe(b);
    const [version, iv, tag, ct] = a.split(".");
    expect(version).toBe("v1");
    expect(Buffer.from(iv ?? "", "base64url")).toHaveLength(12);
    expect(Buffer.from(tag ?? "", "base64url")).toHaveLength(16);
    expect(ct).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(a).not.toContain("same");
  });

  it("accepts raw key bytes and rejects keys of the wrong size", () => {
    const raw = randomBytes(32);
    expect(createSealer(raw).unseal(createSealer(raw.toString("base64")).seal("x"))).toBe("x");
    expect(() => createSealer(randomBytes(16))).toThrow(/exactly 32 bytes/);
  });

  it("refuses a value sealed under another key", () => {
    const other = createSealer(generateSecretsKey());
    expect(() => other.unseal(sealer.seal("secret"))).toThrow(
      /different SECRETS_KEY or has been tampered with/,
    );
  });

  it("detects tampering with any part of the envelope", () => {
    const sealed = sealer.seal("the secret");
    const parts = sealed.split(".");
    for (const i of [1, 2, 3]) {
      const p = parts[i] ?? "";
      const flipped = (p[0] === "A" ? "B" : "A") + p.slice(1);
      const tampered = parts.map((x, j) => (j === i ? flipped : x)).join(".");
      expect(() => sealer.unseal(tampered)).toThrow(SealingError);
    }
  });

  it("rejects malformed envelopes clearly", () => {
    expect(() => sealer.unseal("plaintext")).toThrow(/not a sealed value of a known format/);
    expect(() => sealer.unseal("v2.a.b.c")).toThrow(/known format/);
    expect(() => sealer.unseal("v1.a.b")).toThrow(/known format/);
    expect(() => sealer.unseal("v1.***.b.c")).toThrow(/bad base64url/);
    expect(() => sealer.unseal("v1.AAAA.AAAA.AAAA")).toThrow(/bad IV or tag length/);
  });

  it("seals and unseals JSON", () => {
    const value = { Authorization: "Bearer xyz", n: 1, nested: { list: [1, "two", null] } };
    expect(sealer.unsealJson<typeof value>(sealer.sealJson(value))).toEqual(value);
    expect(sealer.unsealJson(sealer.sealJson(null))).toBeNull();
    expect(() => sealer.sealJson(undefined)).toThrow(SealingError);
  });
});
