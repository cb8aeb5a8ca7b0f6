import { defineProject } from "vitest/config";

export default defineProject({
  // Dumping the OpenAPI document boots the API on a throwaway PGlite: a few seconds.
  test: { name: "api-client", include: ["src/**/*.test.ts"], testTimeout: 60_000 },
});
