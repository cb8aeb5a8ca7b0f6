import { fileURLToPath } from "node:url";
import { configDefaults, defineProject } from "vitest/config";
import { redisExcludes } from "../../test/support/services.js";

export default defineProject(async () => ({
  test: {
    name: "shared",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Without Redis, the files that need it are left out (the run says so in one line).
    exclude: [
      ...configDefaults.exclude,
      ...(await redisExcludes(fileURLToPath(new URL(".", import.meta.url)))),
    ],
  },
}));
