import { compileGlob, type DiscoveredTool, type PolicyDocument, type PolicyWarning } from "@gatehouse/shared";

/** What the policy is checked against: the tenant's upstreams and their last discovered tools. */
export interface UpstreamCatalog {
  name: string;
  toolPrefix: string;
  /** Null until the first discovery: then nothing can be said about tool patterns. */
  tools: DiscoveredTool[] | null;
}

/**
 * Rules that are valid but cannot do what their author meant: an `upstreams` pattern that names
 * no upstream of the tenant, a `tools` pattern that matches none of the current tools of the
 * upstreams the rule covers (often a prefixed name, or `get_*` for `get-sum`). Warnings only: the
 * upstream may be added, or the tool appear, later.
 */
export function policyWarnings(document: PolicyDocument, upstreams: UpstreamCatalog[]): PolicyWarning[] {
  const warnings: PolicyWarning[] = [];
  const names = upstreams.map((u) => u.name);
  const known =
    names.length > 0 ? `the tenant's upstreams are ${names.join(", ")}` : "the tenant has no upstreams yet";
  document.rules.forEach((rule, i) => {
    let covered = upstreams;
    if (rule.upstreams) {
      const globs = rule.upstreams.map(compileGlob);
      rule.upstreams.forEach((pattern, j) => {
        if (!names.some((n) => globs[j]!.test(n))) {
          warnings.push({
            ruleId: rule.id,
            path: `rules.${i}.upstreams.${j}`,
            message: `No upstream is named ${JSON.stringify(pattern)}; ${known}`,
          });
        }
      });
      covered = upstreams.filter((u) => globs.some((g) => g.test(u.name)));
    }
    const discovered = covered.filter(
      (u): u is UpstreamCatalog & { tools: DiscoveredTool[] } => u.tools !== null,
    );
    if (!rule.tools || discovered.length === 0) return;
    rule.tools.forEach((pattern, j) => {
      const glob = compileGlob(pattern);
      if (discovered.some((u) => u.tools.some((t) => glob.test(t.name)))) return;
      const prefixed = discovered.find((u) => u.tools.some((t) => glob.test(u.toolPrefix + t.name)));
      const sample = discovered
        .flatMap((u) => u.tools.map((t) => t.name))
        .slice(0, 8)
        .join(", ");
      warnings.push({
        ruleId: rule.id,
        path: `rules.${i}.tools.${j}`,
        message: prefixed
          ? `${JSON.stringify(pattern)} matches the prefixed names agents see; rules match the upstream's own names, without "${prefixed.toolPrefix}"`
          : `${JSON.stringify(pattern)} matches none of the current tools of ${discovered.map((u) => u.name).join(", ")} (${sample}${discovered.some((u) => u.tools.length > 8) ? ", …" : ""}); rules match the upstream's own tool names, unprefixed`,
      });
    });
  });
  return warnings;
}
