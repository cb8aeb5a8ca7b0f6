import { defineConfig } from "vitest/config";

// One runner for the whole repo: unit and integration tests beside the code, cross-process e2e under test/.
// The global setup starts an embedded Postgres when none answers, and says what is skipped without Redis.
export default defineConfig({
  test: {
    globalSetup: ["test/support/global-setup.ts"],
    projects: ["packages/shared", "packages/db", "packages/api-client", "apps/api", "apps/gateway", "test"],
  },
});
