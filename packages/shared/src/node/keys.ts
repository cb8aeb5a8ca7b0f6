import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** A freshly minted secret: `key` is shown once, `prefix` stays visible, only `hash` is stored. */
export interface GeneratedToken {
  key: string;
  prefix: string;
  hash: string;
}

export const API_KEY_PREFIX = "mgw_";
export const ADMIN_TOKEN_PREFIX = "mgt_";
/** Length of the visible prefix kept beside the hash (`mgw_` plus 8 characters). */
export const VISIBLE_PREFIX_LENGTH = 12;

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
// 62^43 > 2^256, so 43 base62 digits hold any 32 bytes: every token has the same length.
const SECRET_BYTES = 32;
const SECRET_CHARS = 43;
const API_KEY_RE = /^mgw_[0-9A-Za-z]{43}$/;
const ADMIN_TOKEN_RE = /^mgt_[0-9A-Za-z]{43}$/;

function base62(bytes: Buffer): string {
  let n = BigInt(`0x${bytes.toString("hex")}`);
  let out = "";
  while (n > 0n) {
    out = BASE62[Number(n % 62n)] + out;
    n /= 62n;
  }
  return out.padStart(SECRET_CHARS, "0");
}

// Base62 rather than base64url: no `-` or `_`, so a double click selects the whole key.
function generate(prefix: string): GeneratedToken {
  const key = prefix + base62(randomBytes(SECRET_BYTES));
  return { key, prefix: key.slice(0, VISIBLE_PREFIX_LENGTH), hash: hashToken(key) };
}

/** A new agent API key `mgw_…` (256 random bits). */
export function generateApiKey(): GeneratedToken {
  return generate(API_KEY_PREFIX);
}

/** A new admin token `mgt_…` (256 random bits), same shape as an API key. */
export function generateAdminToken(): GeneratedToken {
  return generate(ADMIN_TOKEN_PREFIX);
}

/**
 * SHA-256 hex of a token, the form tokens are stored and looked up in.
 * A fast unsalted hash is right here, unlike for passwords: the tokens carry 256 random bits, so
 * neither brute force nor precomputed tables can reverse the hash, and a deterministic hash lets
 * the gateway find a key by an indexed lookup on every request without a slow KDF on the hot path.
 */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Whether a bearer token has the shape of an API key (cheap; says nothing about validity). */
export function looksLikeApiKey(s: string): boolean {
  return API_KEY_RE.test(s);
}

/** Whether a bearer token has the shape of an admin token. */
export function looksLikeAdminToken(s: string): boolean {
  return ADMIN_TOKEN_RE.test(s);
}

/** Constant-time string equality (for comparing a presented secret or hash with a stored one). */
export function safeEqual(a: string, b: string): boolean {
  // Hashing first gives equal-length inputs, so neither content nor length leaks through timing.
  const ha = createHash("sha256").update(a, "utf8").digest();
  const hb = createHash("sha256").update(b, "utf8").digest();
  return timingSafeEqual(ha, hb);
}

/** Whether `token` hashes to `expectedHash` (hex), compared in constant time. */
export function verifyToken(token: string, expectedHash: string): boolean {
  return safeEqual(hashToken(token), expectedHash.toLowerCase());
}
