import { defineConfig } from "vitest/config";

// One runner for the whole repo: unit and integration tests beside the code, cross-process e2e under test/.
export default defineConfig({
  test: {
    projects: ["packages/shared", "packages/db", "packages/api-client", "apps/api", "apps/gateway", "test"],
  },
});
