import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

// The control plane must not depend on the data plane: what both need lives in packages/.
// The one exception is the embedded entry, which runs the gateway inside this process by design.
const SRC = new URL(".", import.meta.url).pathname;
const ALLOWED = new Set(["embedded.ts"]);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

describe("apps/api boundaries", () => {
  it("no module of the API imports the gateway app, except the embedded entry", () => {
    const offenders = sources(SRC)
      .map((file) => relative(SRC, file))
      .filter((file) => !ALLOWED.has(file))
      .filter((file) =>
        /from\s+["']@gatehouse\/gateway|import\(\s*["']@gatehouse\/gateway/.test(
          readFileSync(join(SRC, file), "utf8"),
        ),
      );
    expect(offenders).toEqual([]);
  });
});
