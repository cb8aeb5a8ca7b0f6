import { defineProject } from "vitest/config";

export default defineProject({
  // test/ is outside tsconfig.json's include, so tell oxc about legacy decorators explicitly.
  // Decorator metadata stays off on purpose: the app must not depend on it (explicit @Inject).
  oxc: { decorator: { legacy: true } },
  test: {
    name: "api",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Booting PGlite and migrating a fresh database take a few seconds per file.
    hookTimeout: 60_000,
    testTimeout: 15_000,
  },
});
