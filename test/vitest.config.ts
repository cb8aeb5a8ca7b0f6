import { fileURLToPath } from "node:url";
import { configDefaults, defineProject } from "vitest/config";
import { redisExcludes } from "./support/services.js";

// Cross-process e2e: real Postgres, Redis, upstream MCP servers. Files run one at a time (2 cores).
// test/chaos: the short fault cases (`*.test.ts`); the long fault suite is `npm run chaos`.
export default defineProject(async () => ({
  test: {
    name: "e2e",
    include: ["e2e/**/*.test.ts", "fixtures/**/*.test.ts", "chaos/**/*.test.ts"],
    // Without Redis, the files that need it are left out (the run says so in one line).
    exclude: [
      ...configDefaults.exclude,
      ...(await redisExcludes(fileURLToPath(new URL(".", import.meta.url)))),
    ],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
}));
