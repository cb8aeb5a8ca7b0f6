// The README's walkthrough, run from the README itself (issue 9): the sh blocks between
// `walkthrough:begin` and `walkthrough:end` against a freshly started embedded instance (`npm
// start`'s entry on PGlite) and the demo upstream started by the README's own command. Only the
// ports and the data folder are rewritten, so the README cannot drift from what works. Also: every
// agent config in the README parses as pasted and points at the tenant URL, and every error code of
// the catalogue is in the README's table.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode } from "@gatehouse/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { printLogsOnFailure } from "../support/hooks.js";
import {
  freePort,
  killAll,
  ManagedProcess,
  repoRoot,
  sleep,
  waitFor,
  waitForHttpOk,
} from "../support/processes.js";

printLogsOnFailure();

let readme: string;
beforeAll(async () => {
  readme = await readFile(join(repoRoot, "README.md"), "utf8");
});

/** The fenced blocks of one info string (`sh`, `json`) in `text`, in order. */
function blocks(text: string, lang: string): string[] {
  const re = new RegExp(`^\`\`\`${lang}\\n([\\s\\S]*?)^\`\`\`$`, "gm");
  return [...text.matchAll(re)].map((m) => m[1] as string);
}

function between(text: string, begin: string, end: string): string {
  const a = text.indexOf(begin);
  const b = text.indexOf(end, a);
  if (a < 0 || b < 0) throw new Error(`README has no ${begin} … ${end} section`);
  return text.slice(a, b);
}

describe("README walkthrough", () => {
  let dataDir: string;
  let home: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "gatehouse-readme-data-"));
    home = await mkdtemp(join(tmpdir(), "gatehouse-readme-home-"));
  });
  afterAll(async () => {
    await killAll(); // a failed step must not leave `npm start` or the demo upstream running
    await rm(dataDir, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  it("runs as written: demo upstream, tenant, key, policy, and a tool call through the gateway", async () => {
    const sh = blocks(between(readme, "<!-- walkthrough:begin", "<!-- walkthrough:end"), "sh");
    const [upstreamBlock, ...rest] = sh;
    expect(upstreamBlock).toMatch(/^# In a second terminal/);
    expect(upstreamBlock).toContain("npm run demo-upstream");
    expect(rest.length).toBeGreaterThan(0);

    const [apiPort, gwPort, demoPort] = [await freePort(), await freePort(), await freePort()];
    // The README's fixed ports and folder, moved out of the way of anything else on this machine.
    const rewrite = (text: string) =>
      text
        .replaceAll("127.0.0.1:4000", `127.0.0.1:${apiPort}`)
        .replaceAll("localhost:8080", `localhost:${gwPort}`)
        .replaceAll("127.0.0.1:3001", `127.0.0.1:${demoPort}`)
        .replaceAll("./.data/", `${dataDir}/`);
    const env = {
      DATABASE_URL: undefined,
      REDIS_URL: undefined,
      API_HOST: undefined,
      GATEWAY_HOST: undefined,
      HOST: undefined,
      DATA_DIR: dataDir,
      API_PORT: String(apiPort),
      GATEWAY_PORT: String(gwPort),
      PUBLIC_GATEWAY_URL: `http://localhost:${gwPort}`,
      DEMO_UPSTREAM_PORT: String(demoPort),
      // The walkthrough does not use the console; `npm start` without it starts faster.
      WEB_PORT: "off",
      GATEWAY_METRICS_PORT: "0",
      LOG_LEVEL: "warn",
      // The Inspector writes ~/.mcp-inspector; npx keeps using the machine's npm cache.
      HOME: home,
      npm_config_cache: process.env.npm_config_cache ?? join(homedir(), ".npm"),
      npm_config_update_notifier: "false",
    };

    // Terminal 1: `npm start` (built already by `npm test`; the entry it runs).
    const gatehouse = new ManagedProcess("npm start", process.execPath, ["apps/api/dist/embedded.js"], {
      env,
    });
    // Terminal 2: the README's block, as written.
    const demo = new ManagedProcess("demo upstream", "bash", ["-c", upstreamBlock!], { env, group: true });
    await demo.waitForLine(/^Demo upstream \(server-everything\) at http:\/\/127\.0\.0\.1:\d+\/mcp/, 60_000);
    await waitForHttpOk(gatehouse, `http://127.0.0.1:${gwPort}/readyz`, 90_000);
    await waitForHttpOk(gatehouse, `http://127.0.0.1:${apiPort}/readyz`, 30_000);
    // The banner comes once everything is up.
    await waitFor("the banner", () => gatehouse.output().includes("Gatehouse is running"), {
      timeoutMs: 60_000,
    });
    expect(gatehouse.output()).toContain("Listening on loopback only");

    // Terminal 3: the rest, one bash session, stopping at the first failing command.
    const script = ["set -euo pipefail", ...rest.map(rewrite)].join("\n");
    const walk = new ManagedProcess("walkthrough", "bash", ["-c", script], { env });
    const { code } = await walk.exited;
    const out = walk.output();
    expect(code, out).toBe(0);
    expect(out).not.toMatch(/"error":\{"code"/);
    expect(out).toMatch(/"slug":"acme"/);
    expect(out).toMatch(/\bmgw_[A-Za-z0-9]+/);
    // The policy saved cleanly: its rules match the demo upstream's real tool names.
    expect(out).toMatch(/"version":1,.*"warnings":\[\]/);
    expect(out).toMatch(/"decision":"allow","ruleId":"research-tools"/);
    // The tool call through the gateway.
    expect(out).toContain('"text": "Echo: hello"');

    // Ctrl-C in terminal 1 says it stopped cleanly and where the data is.
    gatehouse.child.kill("SIGINT");
    const stopped = await Promise.race([gatehouse.exited, sleep(30_000).then(() => null)]);
    expect(stopped).toEqual({ code: 0, signal: null });
    expect(gatehouse.output()).toContain(`Gatehouse stopped cleanly. Data is kept in ${dataDir}`);
    await demo.kill("SIGINT");
  }, 300_000);
});

describe("README agent setups and error table", () => {
  it("every JSON config parses as pasted and points its agent at the tenant's gateway URL", () => {
    const section = between(readme, "## Connect an agent", "## Troubleshooting");
    const configs = blocks(section, "json").map((text) => JSON.parse(text) as Record<string, unknown>);
    expect(configs.length).toBeGreaterThanOrEqual(4);
    const url = "http://localhost:8080/t/acme/mcp";
    for (const config of configs) {
      // Claude Code, Claude Desktop and Cursor: mcpServers; VS Code: servers.
      const servers = (config.mcpServers ?? config.servers) as Record<string, Record<string, unknown>>;
      const acme = servers.acme!;
      expect(acme, JSON.stringify(config)).toBeDefined();
      if (acme.command) {
        expect(acme.args).toContain(url);
        expect(JSON.stringify(acme)).toContain("Authorization:");
      } else {
        expect(acme.url).toBe(url);
        expect((acme.headers as Record<string, string>).Authorization).toMatch(/^Bearer /);
      }
    }
    // VS Code's ${input:…} names an input it declares.
    const vscode = configs.find((c) => c.servers) as { inputs: { id: string }[]; servers: unknown };
    const used = JSON.stringify(vscode.servers).match(/\$\{input:([^}]+)\}/)?.[1];
    expect(vscode.inputs.map((i) => i.id)).toContain(used);
  });

  it("the error table lists every code of the catalogue, with its HTTP status", async () => {
    const { httpStatusOf } = await import("@gatehouse/shared");
    const table = between(readme, "<!-- error-codes:begin", "<!-- error-codes:end");
    for (const code of Object.values(ErrorCode)) {
      expect(table, code).toMatch(new RegExp(`\\| \`${code}\`\\s*\\| ${httpStatusOf(code)}\\s*\\|`));
    }
  });
});
