// `npm test` on a machine without Postgres or Redis: a real vitest run pointed at ports where
// nothing listens starts an embedded Postgres for the run and leaves out what needs Redis, saying so.
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, test } from "vitest";
import { freePort, repoRoot } from "../support/processes.js";
import { probePostgres, probeRedis, testFilesNeedingRedis } from "../support/services.js";

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [resolve(repoRoot, "node_modules/vitest/vitest.mjs"), ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env, NO_COLOR: "1", FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    child.once("error", fail);
    child.once("close", (code) => done({ code, out }));
  });
}

describe("tests without the shared services", () => {
  test("probes tell a closed port from a server", async () => {
    const port = await freePort();
    expect(await probePostgres(`postgres://postgres@127.0.0.1:${port}/postgres`)).toBe("absent");
    expect(await probeRedis(`redis://127.0.0.1:${port}`)).toBe(false);
  });

  test("the Redis-free embedded mode runs, the Redis users are the ones left out", () => {
    const files = testFilesNeedingRedis(resolve(repoRoot, "apps/api")).map((f) =>
      f.slice(repoRoot.length + 1),
    );
    expect(files).toContain("apps/api/test/api.postgres.test.ts");
    expect(files).not.toContain("apps/api/test/api.embedded.test.ts");
    expect(files).not.toContain("apps/api/src/config/api.config.test.ts");
  });

  test("no Postgres and no Redis answering: an embedded Postgres serves the run, one line names what was skipped", async () => {
    const [pgPort, redisPort] = [await freePort(), await freePort()];
    const { code, out } = await run(
      ["run", "packages/db/src/testing.test.ts", "packages/shared/src/node/redis-bus.test.ts"],
      {
        TEST_DATABASE_ADMIN_URL: `postgres://postgres@127.0.0.1:${pgPort}/postgres`,
        TEST_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      },
    );
    expect(out).toMatch(
      /No Postgres answers at postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres: started an embedded Postgres/,
    );
    expect(out).toMatch(
      new RegExp(`No Redis answers at redis://127\\.0\\.0\\.1:${redisPort}: skipped \\d+ test files`),
    );
    expect(out).toMatch(/Test Files\s+1 passed \(1\)/); // testing.test.ts ran; redis-bus.test.ts was left out
    expect(code).toBe(0);
  }, 180_000);
});
