import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, redactQuery } from "./logger.js";

describe("request logs", () => {
  it("keep query parameter names but never their values (connect tickets, OAuth codes, state)", () => {
    expect(redactQuery("/v1/oauth/callback?code=abc123&state=s3cret")).toBe(
      "/v1/oauth/callback?code=[redacted]&state=[redacted]",
    );
    expect(redactQuery("/v1/oauth/connect?ticket=t0k")).toBe("/v1/oauth/connect?ticket=[redacted]");
    expect(redactQuery("/v1/tenants")).toBe("/v1/tenants");
  });

  it("the API logger writes a request's URL without its query values", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    createLogger("info", sink).info(
      { req: { id: "r1", method: "GET", url: "/v1/oauth/callback?code=abc123" } },
      "x",
    );
    expect(lines.join("")).toContain("/v1/oauth/callback?code=[redacted]");
    expect(lines.join("")).not.toContain("abc123");
  });
});
