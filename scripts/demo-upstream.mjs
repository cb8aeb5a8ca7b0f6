#!/usr/bin/env node
// `npm run demo-upstream`: the MCP reference server (`@modelcontextprotocol/server-everything`)
// over Streamable HTTP at http://127.0.0.1:3001/mcp, for the README's walkthrough. Its own HTTP
// entry listens on every interface; this one binds 127.0.0.1 only (and checks Host and Origin).
//   npm run demo-upstream [-- --port N]     (or DEMO_UPSTREAM_PORT=N)
import { parseArgs, serveHttp } from "../test/fixtures/lib/serve.mjs";

const args = parseArgs();
// biome-ignore lint/suspicious/noUndeclaredEnvVars: a script of its own, not a turbo task
const port = Number(args.port ?? process.env.DEMO_UPSTREAM_PORT ?? 3001);
const { createServer } = await import("@modelcontextprotocol/server-everything/dist/server/index.js");
const { port: actual } = await serveHttp(() => createServer(), { port });
process.stdout.write(
  `Demo upstream (server-everything) at http://127.0.0.1:${actual}/mcp; Ctrl-C stops it.\n`,
);
