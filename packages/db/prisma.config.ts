import { defineConfig } from "prisma/config";

// Prisma's env() throws when DATABASE_URL is unset (CI, embedded mode); generate needs no URL.
export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres" },
});
