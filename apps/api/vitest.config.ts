import { fileURLToPath } from "node:url";
import { configDefaults, defineProject } from "vitest/config";
import { redisExcludes } from "../../test/support/services.js";

export default defineProject(async () => ({
  // test/ is outside tsconfig.json's include, so tell oxc about legacy decorators explicitly.
  // Decorator metadata stays off on purpose: the app must not depend on it (explicit @Inject).
  oxc: { decorator: { legacy: true } },
  test: {
    name: "api",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Without Redis, the files that need it are left out (the run says so in one line).
    exclude: [
      ...configDefaults.exclude,
      ...(await redisExcludes(fileURLToPath(new URL(".", import.meta.url)))),
    ],
    // Booting PGlite and migrating a fresh database take a few seconds per file.
    hookTimeout: 60_000,
    testTimeout: 15_000,
  },
}));
