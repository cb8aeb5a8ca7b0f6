import { defineProject } from "vitest/config";

// Cross-process e2e: real Postgres, Redis, upstream MCP servers. Files run one at a time (2 cores).
// test/chaos: the short fault cases (`*.test.ts`); the long fault suite is `npm run chaos`.
export default defineProject({
  test: {
    name: "e2e",
    include: ["e2e/**/*.test.ts", "fixtures/**/*.test.ts", "chaos/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
