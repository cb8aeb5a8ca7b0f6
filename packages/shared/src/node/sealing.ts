import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/** Encrypts secrets at rest (upstream headers, OAuth tokens, client secrets) with AES-256-GCM. */
export interface Sealer {
  /** `v1.<iv>.<tag>.<ciphertext>`, base64url parts, fresh random 12-byte IV each time. */
  seal(plaintext: string): string;
  /** The plaintext; throws if the envelope is malformed, was tampered with, or was sealed under another key. */
  unseal(sealed: string): string;
  sealJson(value: unknown): string;
  unsealJson<T = unknown>(sealed: string): T;
}

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = "v1";
// Binds every envelope to this purpose and format version.
const AAD = Buffer.from("gatehouse:sealed:v1", "utf8");
const B64URL_PART = /^[A-Za-z0-9_-]*$/;

/** Thrown when a secrets key or a sealed value is unusable; the message never contains secret material. */
export class SealingError extends Error {
  override name = "SealingError";
}

/**
 * Parses `SECRETS_KEY`: 64 hex characters, or standard/url-safe base64 (padding optional) of
 * exactly 32 bytes. Surrounding whitespace is ignored.
 */
export function parseSecretsKey(material: string): Buffer {
  const s = material.trim();
  if (/^[0-9a-fA-F]{64}$/.test(s)) return Buffer.from(s, "hex");
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) {
    const bytes = Buffer.from(s.replace(/-/g, "+").replace(/_/g, "/"), "base64");
    const canonical = bytes.toString("base64").replace(/=+$/, "");
    const given = s.replace(/=+$/, "").replace(/-/g, "+").replace(/_/g, "/");
    if (bytes.length === KEY_BYTES && canonical === given) return bytes;
  }
  throw new SealingError(
    `The secrets key must be 32 bytes, written as 64 hex characters or as base64/base64url (got ${s.length} characters that are neither); generate one with \`openssl rand -hex 32\``,
  );
}

/** A new random secrets key as 64 hex characters. */
export function generateSecretsKey(): string {
  return randomBytes(KEY_BYTES).toString("hex");
}

/** A sealer bound to one key (the key material as accepted by `parseSecretsKey`, or 32 raw bytes). */
export function createSealer(material: string | Buffer): Sealer {
  const key = typeof material === "string" ? parseSecretsKey(material) : Buffer.from(material);
  if (key.length !== KEY_BYTES) {
    throw new SealingError(`The secrets key must be exactly 32 bytes, got ${key.length}`);
  }

  const seal = (plaintext: string): string => {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(AAD);
    const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [VERSION, iv.toString("base64url"), tag.toString("base64url"), ct.toString("base64url")].join(".");
  };

  const unseal = (sealed: string): string => {
    if (typeof sealed !== "string") throw new SealingError("Cannot unseal: the value is not a string");
    const parts = sealed.split(".");
    if (parts[0] !== VERSION || parts.length !== 4) {
      throw new SealingError(
        `Cannot unseal: not a sealed value of a known format (expected "${VERSION}.<iv>.<tag>.<ciphertext>")`,
      );
    }
    const [, ivPart, tagPart, ctPart] = parts as [string, string, string, string];
    if (![ivPart, tagPart, ctPart].every((p) => B64URL_PART.test(p))) {
      throw new SealingError("Cannot unseal: the sealed value is corrupt (bad base64url)");
    }
    const iv = Buffer.from(ivPart, "base64url");
    const tag = Buffer.from(tagPart, "base64url");
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
      throw new SealingError("Cannot unseal: the sealed value is corrupt (bad IV or tag length)");
    }
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(AAD);
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(Buffer.from(ctPart, "base64url")), decipher.final()]).toString(
        "utf8",
      );
    } catch {
      throw new SealingError(
        "Cannot unseal: authentication failed. The value was sealed under a different SECRETS_KEY or has been tampered with",
      );
    }
  };

  return {
    seal,
    unseal,
    sealJson: (value) => {
      const json = JSON.stringify(value);
      if (json === undefined) throw new SealingError("Cannot seal: the value has no JSON form");
      return seal(json);
    },
    unsealJson: <T = unknown>(sealed: string): T => JSON.parse(unseal(sealed)) as T,
  };
}
