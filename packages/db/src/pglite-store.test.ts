import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { openPGliteStore } from "./pglite-store.js";

const root = mkdtempSync(path.join(tmpdir(), "gatehouse-db-lock-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it("refuses a data dir locked by another live process, naming it", async () => {
  const dataDir = path.join(root, "busy");
  mkdirSync(dataDir);
  writeFileSync(path.join(dataDir, "pglite.lock"), `${process.ppid}\n`);
  await expect(openPGliteStore(dataDir)).rejects.toThrow(`in use by process ${process.ppid}`);
});

it("takes over a lock left by a process that is gone, and releases it on close", async () => {
  const dataDir = path.join(root, "stale");
  mkdirSync(dataDir);
  const lock = path.join(dataDir, "pglite.lock");
  writeFileSync(lock, "4194303\n"); // above the default pid_max: never alive
  const store = await openPGliteStore(dataDir);
  expect(readFileSync(lock, "utf8").trim()).toBe(String(process.pid));
  await store.close();
  await store.close();
  expect(existsSync(lock)).toBe(false);
});
