import { describe, expect, it } from "vitest";
import { createSealer, generateSecretsKey } from "./sealing.js";
import { hasSealedHeaders, staticUpstreamHeaders } from "./upstream-headers.js";

const sealer = createSealer(generateSecretsKey());
const base = { headersSealed: null, authSecretSealed: null, authMode: "none", authConfig: {} };

describe("staticUpstreamHeaders", () => {
  it("unseals static headers and a bearer credential", () => {
    const u = {
      ...base,
      headersSealed: sealer.sealJson({ "X-Team": "blue" }),
      authMode: "bearer",
      authSecretSealed: sealer.seal("s3cret"),
    };
    expect(hasSealedHeaders(u)).toBe(true);
    expect(staticUpstreamHeaders(u, sealer)).toEqual({ "X-Team": "blue", Authorization: "Bearer s3cret" });
  });

  it("puts a header credential under its configured name", () => {
    const u = {
      ...base,
      authMode: "header",
      authConfig: { headerName: "X-API-Key" },
      authSecretSealed: sealer.seal("k"),
    };
    expect(staticUpstreamHeaders(u, sealer)).toEqual({ "X-API-Key": "k" });
  });

  it("leaves OAuth secrets to the token machinery and needs no sealer for a plain upstream", () => {
    const u = { ...base, authMode: "oauth-client-credentials", authSecretSealed: sealer.seal("x") };
    expect(hasSealedHeaders(u)).toBe(false);
    expect(staticUpstreamHeaders(u, sealer)).toEqual({});
    expect(hasSealedHeaders(base)).toBe(false);
  });
});
