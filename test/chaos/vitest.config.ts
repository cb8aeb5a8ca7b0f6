import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// `npm run chaos`: the long fault suite (`*.chaos.ts`), on its own Postgres and Redis. Not in `npm test`
// (its short cases, `*.test.ts` here, are).
export default defineConfig({
  test: {
    root: fileURLToPath(new URL("..", import.meta.url)),
    include: ["chaos/**/*.chaos.ts"],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 300_000,
  },
});
