import { fileURLToPath } from "node:url";
import { configDefaults, defineProject } from "vitest/config";
import { redisExcludes } from "../../test/support/services.js";

// Integration tests run real Postgres, Redis, upstream processes and gateway nodes: give them time
// on a loaded 2-core machine.
export default defineProject(async () => ({
  test: {
    name: "gateway",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Without Redis, the files that need it are left out (the run says so in one line).
    exclude: [
      ...configDefaults.exclude,
      ...(await redisExcludes(fileURLToPath(new URL(".", import.meta.url)))),
    ],
    testTimeout: 20_000,
    hookTimeout: 120_000,
  },
}));
