// Policy evaluation cost per call (compiled globs and CEL), printed, not asserted.
//   npm run build && node test/bench/policy-eval.mjs
import { compilePolicy } from "@gatehouse/shared";

const rules = Array.from({ length: 50 }, (_, i) => ({
  id: `r${i}`,
  effect: "allow",
  upstreams: [`up${i}`],
  tools: ["*"],
}));
const policy = compilePolicy({
  rules: [
    ...rules,
    { id: "deny-etc", effect: "deny", upstreams: ["fs"], when: "args.path.startsWith('/etc')" },
    {
      id: "admins-write-fs",
      effect: "allow",
      upstreams: ["fs"],
      tools: ["write_*"],
      when: "'admin' in claims.groups && !args.path.startsWith('/etc')",
    },
  ],
});
const input = {
  principal: { kind: "jwt", id: "sub:a", subject: "a", roles: ["x"], claims: { groups: ["admin"] } },
  upstream: "fs",
  tool: "write_file",
  args: { path: "/srv/file.txt" },
};
for (let i = 0; i < 20_000; i++) policy.evaluate(input); // warm-up
const n = 200_000;
const started = process.hrtime.bigint();
for (let i = 0; i < n; i++) policy.evaluate(input);
const ns = Number(process.hrtime.bigint() - started) / n;
console.log(
  `policy.evaluate: 52 rules, 2 CEL conditions: ${(ns / 1000).toFixed(2)} µs/call (${Math.round(1e9 / ns).toLocaleString()} calls/s)`,
);
