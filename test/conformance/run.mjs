#!/usr/bin/env node
// Runs the official MCP conformance suite (server scenarios) against one MCP endpoint.
// The suite needs Node 22: Node 22 (`node-<platform>-<arch>@22`) and the suite are installed from
// npm into ${CONFORMANCE_HOME:-~/.cache/gatehouse-conformance} on first use.
//
//   node test/conformance/run.mjs URL [--suite all|active] [--scenario NAME]
// prints the suite's output and a summary; exits 1 when a check failed.
import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

export const CONFORMANCE_VERSION = process.env.CONFORMANCE_VERSION ?? "0.1.16";
const NODE_MAJOR = "22";

export function conformanceHome() {
  return process.env.CONFORMANCE_HOME || join(homedir(), ".cache", "gatehouse-conformance");
}

function paths(home) {
  const nodePkg = `node-${process.platform}-${process.arch}`;
  const nodeBin = join(
    home,
    "node_modules",
    nodePkg,
    "bin",
    process.platform === "win32" ? "node.exe" : "node",
  );
  const suiteDir = join(home, "node_modules", "@modelcontextprotocol", "conformance");
  return { nodePkg, nodeBin, suiteDir, suiteMain: join(suiteDir, "dist", "index.js") };
}

function installedVersion(suiteDir) {
  try {
    return JSON.parse(readFileSync(join(suiteDir, "package.json"), "utf8")).version;
  } catch {
    return undefined;
  }
}

function installedVersionOf(home, name) {
  return installedVersion(join(home, "node_modules", ...name.split("/")));
}

/** `npm install` (saved into the cache's own package.json, so later installs keep it) of `specs` into `home`. */
function npmInstallInto(home, specs, log) {
  mkdirSync(home, { recursive: true });
  if (!existsSync(join(home, "package.json"))) {
    writeFileSync(
      join(home, "package.json"),
      JSON.stringify({ name: "gatehouse-node22-tools", private: true }),
    );
  }
  log(`installing ${specs.join(" ")} into ${home}`);
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const r = spawnSync(npm, ["install", "--no-audit", "--no-fund", "--loglevel=error", ...specs], {
    cwd: home,
    encoding: "utf8",
    timeout: 300_000,
  });
  if (r.status !== 0)
    throw new Error(`npm install ${specs.join(" ")} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
}

/** Installs Node 22 and the suite into the cache folder unless present; returns the paths. */
export function ensureConformance({ log = () => {} } = {}) {
  const home = conformanceHome();
  const p = paths(home);
  if (existsSync(p.nodeBin) && installedVersion(p.suiteDir) === CONFORMANCE_VERSION) return p;
  npmInstallInto(
    home,
    [`${p.nodePkg}@${NODE_MAJOR}`, `@modelcontextprotocol/conformance@${CONFORMANCE_VERSION}`],
    log,
  );
  if (!existsSync(p.nodeBin) || installedVersion(p.suiteDir) !== CONFORMANCE_VERSION) {
    throw new Error(`conformance install left no ${p.nodeBin} or suite ${CONFORMANCE_VERSION}`);
  }
  return p;
}

export const INSPECTOR_VERSION = process.env.INSPECTOR_VERSION ?? "2.12.0";

/**
 * The MCP Inspector CLI needs Node >= 22.19 too: installed beside the suite, run with its Node.
 * Returns `{ nodeBin, inspectorMain }`.
 */
export function ensureInspector({ log = () => {} } = {}) {
  const p = ensureConformance({ log });
  const home = conformanceHome();
  const name = "@modelcontextprotocol/inspector";
  if (installedVersionOf(home, name) !== INSPECTOR_VERSION)
    npmInstallInto(home, [`${name}@${INSPECTOR_VERSION}`], log);
  const dir = join(home, "node_modules", "@modelcontextprotocol", "inspector");
  const bin = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).bin;
  const rel = typeof bin === "string" ? bin : bin["mcp-inspector"];
  return { nodeBin: p.nodeBin, inspectorMain: join(dir, rel) };
}

/**
 * Runs `server --url URL` and returns
 * `{ passed, failed, exitCode, output, scenarios: [{scenario, passed, failed}], checks: [{scenario, id, status, errorMessage}] }`.
 */
export async function runConformance(
  url,
  { suite = "all", scenario, timeoutMs = 240_000, log = () => {} } = {},
) {
  const p = ensureConformance({ log });
  const outDir = mkdtempSync(join(tmpdir(), "gatehouse-conformance-"));
  const args = [p.suiteMain, "server", "--url", url, "-o", outDir];
  if (scenario) args.push("--scenario", scenario);
  else args.push("--suite", suite);
  const child = spawn(p.nodeBin, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  let output = "";
  child.stdout.on("data", (c) => {
    output += c;
  });
  child.stderr.on("data", (c) => {
    output += c;
  });
  const exitCode = await new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  const scenarios = [];
  for (const m of output.matchAll(/^[✓✗] (\S+): (\d+) passed, (\d+) failed/gmu)) {
    scenarios.push({ scenario: m[1], passed: Number(m[2]), failed: Number(m[3]) });
  }
  const checks = [];
  for (const dir of readdirSync(outDir)) {
    const file = join(outDir, dir, "checks.json");
    if (!existsSync(file)) continue;
    const scenarioName = dir.replace(/^server-/, "").replace(/-\d{4}-\d{2}-\d{2}T.*$/, "");
    for (const c of JSON.parse(readFileSync(file, "utf8"))) {
      checks.push({ scenario: scenarioName, id: c.id, status: c.status, errorMessage: c.errorMessage });
    }
  }
  rmSync(outDir, { recursive: true, force: true });
  const total = /Total: (\d+) passed, (\d+) failed/.exec(output);
  const single = /Passed: (\d+)\/(\d+), (\d+) failed/.exec(output);
  const passed = total ? Number(total[1]) : single ? Number(single[1]) : 0;
  const failed = total ? Number(total[2]) : single ? Number(single[3]) : 0;
  if (!total && !single) {
    throw new Error(`conformance run printed no total (exit ${exitCode}):\n${output.slice(-4000)}`);
  }
  return { passed, failed, exitCode, output, scenarios, checks };
}

/** `scenario/checkId` of every check with status SUCCESS. */
export function passingChecks(result) {
  return new Set(result.checks.filter((c) => c.status === "SUCCESS").map((c) => `${c.scenario}/${c.id}`));
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const [url, ...rest] = process.argv.slice(2);
  if (!url) {
    console.error("usage: node test/conformance/run.mjs URL [--suite all|active] [--scenario NAME]");
    process.exit(2);
  }
  const opt = (name) => {
    const i = rest.indexOf(`--${name}`);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  const result = await runConformance(url, {
    suite: opt("suite") ?? "all",
    scenario: opt("scenario"),
    log: (m) => console.error(m),
  });
  process.stdout.write(result.output);
  for (const c of result.checks.filter((x) => x.status === "FAILURE")) {
    console.log(`FAILED ${c.scenario}/${c.id}: ${c.errorMessage ?? ""}`);
  }
  console.log(`\n${result.passed} passed, ${result.failed} failed`);
  process.exit(result.failed > 0 ? 1 : 0);
}
