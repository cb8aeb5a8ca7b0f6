import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// `npm run soak`: the long steady-load run (`*.soak.ts`); SOAK_MINUTES (default 30) sets its length.
const minutes = Number(process.env.SOAK_MINUTES ?? 30);
export default defineConfig({
  test: {
    root: fileURLToPath(new URL("..", import.meta.url)),
    include: ["chaos/**/*.soak.ts"],
    testTimeout: minutes * 60_000 + 300_000,
    hookTimeout: 300_000,
  },
});
