// Vitest glue: print the processes' output when a test fails, and clean up after a file.
import { afterAll, afterEach } from "vitest";
import { killAll, liveProcesses } from "./processes.js";

/** After each failed test, print the tail of every live process's output (stack and fixtures). */
export function printLogsOnFailure(): void {
  afterEach((ctx) => {
    if (ctx.task.result?.state !== "fail") return;
    const parts = liveProcesses().map((p) => `=== ${p.name} (pid ${p.pid}) ===\n${p.tail(6000)}`);
    console.error(`\n--- process output for failed test "${ctx.task.name}" ---\n${parts.join("\n")}`);
  });
  afterAll(async () => {
    await killAll();
  });
}
