import { defineProject } from "vitest/config";

// Real Postgres and real PGlite (which boots in ~3 s): generous timeouts.
export default defineProject({
  test: {
    name: "db",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
