import { defineConfig } from "vitest/config";

// One runner for the whole repo: unit tests beside the code, e2e under test/e2e.
export default defineConfig({
  test: {
    projects: ["packages/*", "apps/*", "test"],
  },
});
