import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";

export interface PGliteStore {
  pglite: PGlite;
  /** The PGlite data directory: `${dataDir}/pglite`. */
  dir: string;
  /** Closes PGlite and releases the lock. Safe to call twice. */
  close(): Promise<void>;
}

// Dirs this process holds; a lock file naming our own pid but missing here is left over from an
// earlier process that had the same pid (containers restart as pid 1).
const held = new Set<string>();

/**
 * Open the PGlite under `${dataDir}/pglite`, holding `${dataDir}/pglite.lock`. PGlite itself does
 * not stop a second process from opening the same directory, which corrupts it.
 */
export async function openPGliteStore(dataDir: string): Promise<PGliteStore> {
  const root = path.resolve(dataDir);
  const dir = path.join(root, "pglite");
  const lockPath = path.join(root, "pglite.lock");
  mkdirSync(dir, { recursive: true });
  acquire(lockPath, dir);
  const release = () => {
    if (!held.delete(dir)) return;
    try {
      unlinkSync(lockPath);
    } catch {}
  };
  process.once("exit", release);
  let pglite: PGlite;
  try {
    pglite = await PGlite.create(dir);
  } catch (e) {
    release();
    process.removeListener("exit", release);
    throw e;
  }
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= pglite.close().finally(() => {
      release();
      process.removeListener("exit", release);
    });
    return closing;
  };
  return { pglite, dir, close };
}

function acquire(lockPath: string, dir: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, "wx");
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      held.add(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const pid = Number.parseInt(readLock(lockPath), 10);
    if (pid === process.pid && held.has(dir)) {
      throw new Error(
        `PGlite at ${dir} is already open in this process; share one Db instead of opening it twice.`,
      );
    }
    if (pid !== process.pid && isAlive(pid)) {
      throw new Error(
        `PGlite at ${dir} is in use by process ${pid} (embedded mode runs in one process). Stop it, or delete ${lockPath} if that process is not Gatehouse.`,
      );
    }
    try {
      unlinkSync(lockPath); // stale: its process is gone
    } catch {}
  }
  throw new Error(`Could not lock ${lockPath}; another process is opening the same PGlite.`);
}

function readLock(lockPath: string): string {
  try {
    return readFileSync(lockPath, "utf8").trim();
  } catch {
    return "";
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
