#!/usr/bin/env node
// Top self-time functions of a V8 .cpuprofile (from `node --cpu-prof`), grouped by function and
// file, plus totals per package — enough to see where a hot path spends its time.
//
//   node test/bench/profile-summary.mjs PROFILE.cpuprofile [--top 30] [--callers FUNCTION]
import { readFileSync } from "node:fs";

const [file, ...rest] = process.argv.slice(2);
if (!file) {
  console.error("usage: node test/bench/profile-summary.mjs PROFILE.cpuprofile [--top 30]");
  process.exit(2);
}
const ti = rest.indexOf("--top");
const top = ti >= 0 ? Number(rest[ti + 1]) : 30;
const profile = JSON.parse(readFileSync(file, "utf8"));

// Self time per node = hit samples × sampling interval; intervals come from timeDeltas.
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

const where = (url) => {
  if (!url) return "(native)";
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  if (url.startsWith("node:")) return "node";
  const a = /\/(apps|packages)\/([^/]+)\//.exec(url);
  return a ? `${a[1]}/${a[2]}` : url.replace(/^file:\/\//, "");
};

const byFunction = new Map();
const byPackage = new Map();
for (const [id, us] of selfUs) {
  const { callFrame } = byId.get(id);
  const name = callFrame.functionName || "(anonymous)";
  const file = callFrame.url
    ? `${callFrame.url.replace(/^.*\/(node_modules|apps|packages)\//, "$1/")}:${callFrame.lineNumber + 1}`
    : "";
  const key = `${name} ${file}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  const pkg = name === "(garbage collector)" ? "(gc)" : name === "(idle)" ? "(idle)" : where(callFrame.url);
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
}

const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
console.log(`total sampled ${(total / 1e6).toFixed(2)} s\n\nby package / area:`);
for (const [k, us] of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 15))
  console.log(`  ${pct(us)}  ${k}`);
if (top > 0) console.log(`\ntop ${top} functions by self time:`);
for (const [k, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top))
  console.log(`  ${pct(us)}  ${k}`);

// --callers NAME: the call stacks (6 frames up) that spend self time in functions named NAME.
const ci = rest.indexOf("--callers");
if (ci >= 0) {
  const name = rest[ci + 1];
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stacks = new Map();
  for (const [id, us] of selfUs) {
    if (byId.get(id).callFrame.functionName !== name) continue;
    const frames = [];
    for (let p = parent.get(id), i = 0; p !== undefined && i < 6; p = parent.get(p), i++) {
      const f = byId.get(p).callFrame;
      frames.push(`${f.functionName || "(anonymous)"}@${where(f.url)}`);
    }
    const key = frames.join(" < ");
    stacks.set(key, (stacks.get(key) ?? 0) + us);
  }
  console.log(`\ncallers of ${name}:`);
  for (const [k, us] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 10))
    console.log(`  ${pct(us)}  ${k}`);
}
