import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, test } from "vitest";

const script = join(dirname(fileURLToPath(import.meta.url)), "../scripts/generate.mjs");

// Fails when someone changed a route or schema of the API without regenerating the client.
test("the committed client matches the API's OpenAPI document", async () => {
  const result = await promisify(execFile)(process.execPath, [script, "--check"]).then(
    ({ stdout }) => ({ code: 0, out: stdout }),
    (err: { code: number; stderr: string }) => ({ code: err.code, out: err.stderr }),
  );
  expect(result.out).toMatch(/up to date/);
  expect(result.code).toBe(0);
});
