#!/usr/bin/env node
// The floor for any proxy: node:http in, node:http out over a keep-alive agent, bodies piped,
// headers copied (minus hop-by-hop ones, RFC 9110 section 7.6.1). No parsing, no auth, no state.
//
//   node test/bench/bare-proxy.mjs --target http://127.0.0.1:PORT [--port 0]
//
// Prints `listening <port>` on stdout once bound.
import http from "node:http";

const argv = process.argv.slice(2);
const option = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
};
const target = new URL(option("target", ""));
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "host",
]);

function forwardHeaders(headers) {
  const out = {};
  for (const [k, v] of Object.entries(headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) out[k] = v;
  return out;
}

const server = http.createServer((req, res) => {
  const upstream = http.request(
    {
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: forwardHeaders(req.headers),
      agent,
    },
    (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, forwardHeaders(upRes.headers));
      upRes.pipe(res);
    },
  );
  upstream.on("error", (err) => {
    if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
    res.end(`upstream error: ${err.message}`);
  });
  req.pipe(upstream);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(option("port", "0")), "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
