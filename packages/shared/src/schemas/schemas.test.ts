import { describe, expect, test } from "vitest";
import { PaginationQuerySchema, zodIssuesToDetails } from "./common.schema.js";
import { TenantCreateSchema, TenantSettingsPatchSchema } from "./tenants.schema.js";
import { UpstreamCreateSchema, upstreamTransportErrors } from "./upstreams.schema.js";

const detailsOf = (result: { success: boolean; error?: { issues: unknown[] } }) =>
  zodIssuesToDetails((result.error?.issues ?? []) as never);

describe("zodIssuesToDetails", () => {
  test("one entry per bad field, unknown fields named one by one, array indexes in brackets", () => {
    const result = TenantCreateSchema.safeParse({
      slug: "A",
      extra: 1,
      other: 2,
      settings: { allowedOrigins: ["ok", "https://fine.example"] },
    });
    expect(detailsOf(result)).toEqual([
      { path: "slug", message: expect.stringContaining("lowercase") },
      { path: "name", message: "Required" },
      { path: "settings.allowedOrigins[0]", message: expect.any(String) },
      { path: "extra", message: "Unknown field" },
      { path: "other", message: "Unknown field" },
    ]);
  });
});

describe("tenants", () => {
  test("slug pattern", () => {
    for (const ok of ["ab", "a1", "acme-corp", `a${"b".repeat(62)}`])
      expect(TenantCreateSchema.safeParse({ slug: ok, name: "x" }).success).toBe(true);
    for (const bad of ["a", "-ab", "Ab", "a_b", `a${"b".repeat(63)}`])
      expect(TenantCreateSchema.safeParse({ slug: bad, name: "x" }).success).toBe(false);
  });

  test("a settings patch fills in no defaults, so only the fields sent change", () => {
    expect(TenantSettingsPatchSchema.parse({ captureArguments: true })).toEqual({ captureArguments: true });
    expect(TenantSettingsPatchSchema.safeParse({ nope: 1 }).success).toBe(false);
  });
});

describe("upstreams", () => {
  test("transport rules", () => {
    expect(upstreamTransportErrors({ transport: "streamable-http" })).toEqual([
      { path: "url", message: expect.any(String) },
    ]);
    expect(upstreamTransportErrors({ transport: "stdio" }).map((e) => e.path)).toEqual(["command"]);
    expect(
      upstreamTransportErrors({ transport: "sse", url: "https://x", command: "ls", env: { A: "1" } }).map(
        (e) => e.path,
      ),
    ).toEqual(["command", "env"]);
    expect(
      upstreamTransportErrors({ transport: "stdio", command: "npx", url: "https://x" }).map((e) => e.path),
    ).toEqual(["url"]);
  });

  test("auth is discriminated by mode and strict", () => {
    const base = { name: "gh", transport: "sse", url: "https://x.example/sse" };
    expect(UpstreamCreateSchema.safeParse({ ...base, auth: { mode: "none" } }).success).toBe(true);
    expect(
      detailsOf(UpstreamCreateSchema.safeParse({ ...base, auth: { mode: "none", token: "x" } })),
    ).toEqual([{ path: "auth.token", message: "Unknown field" }]);
    expect(
      detailsOf(UpstreamCreateSchema.safeParse({ ...base, auth: { mode: "bearer" } })).map((d) => d.path),
    ).toEqual(["auth.token"]);
    expect(
      detailsOf(UpstreamCreateSchema.safeParse({ ...base, headers: { "X-A": "a\r\nInjected: 1" } })).map(
        (d) => d.path,
      ),
    ).toEqual(["headers.X-A"]);
  });

  test("name pattern", () => {
    for (const ok of ["a", "github", "my_server-2"])
      expect(UpstreamCreateSchema.safeParse({ name: ok, transport: "stdio", command: "x" }).success).toBe(
        true,
      );
    for (const bad of ["", "_a", "A", "a.b", "a".repeat(64)])
      expect(UpstreamCreateSchema.safeParse({ name: bad, transport: "stdio", command: "x" }).success).toBe(
        false,
      );
  });
});

test("pagination: limit 1..200, default 50; cursor is a uuid", () => {
  expect(PaginationQuerySchema.parse({})).toEqual({ limit: 50 });
  expect(PaginationQuerySchema.parse({ limit: "200" }).limit).toBe(200);
  expect(PaginationQuerySchema.safeParse({ limit: "201" }).success).toBe(false);
  expect(PaginationQuerySchema.safeParse({ limit: "0" }).success).toBe(false);
  expect(PaginationQuerySchema.safeParse({ cursor: "x" }).success).toBe(false);
});
