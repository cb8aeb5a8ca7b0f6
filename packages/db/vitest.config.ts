import { fileURLToPath } from "node:url";
import { configDefaults, defineProject } from "vitest/config";
import { redisExcludes } from "../../test/support/services.js";

// Real Postgres and real PGlite (which boots in ~3 s): generous timeouts.
export default defineProject(async () => ({
  test: {
    name: "db",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Without Redis, the files that need it are left out (the run says so in one line).
    exclude: [
      ...configDefaults.exclude,
      ...(await redisExcludes(fileURLToPath(new URL(".", import.meta.url)))),
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
}));
