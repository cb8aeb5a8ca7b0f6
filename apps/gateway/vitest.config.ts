import { defineProject } from "vitest/config";

// Integration tests run real Postgres, Redis, upstream processes and gateway nodes: give them time
// on a loaded 2-core machine.
export default defineProject({
  test: {
    name: "gateway",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 120_000,
  },
});
