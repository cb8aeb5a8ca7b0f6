/** A compiled glob: `*` matches any run of characters (including none), `?` exactly one. */
export interface Glob {
  readonly pattern: string;
  /** True when the pattern matches every string (`*`, `**`, …), so callers can skip the test. */
  readonly matchesAll: boolean;
  test(value: string): boolean;
}

const REGEX_SPECIALS = /[.+^${}()|[\]\\/]/g;

/** Compiles a glob (`*`, `?`, everything else literal) into an anchored matcher, once. */
export function compileGlob(pattern: string): Glob {
  if (/^\*+$/.test(pattern)) return { pattern, matchesAll: true, test: () => true };
  if (!/[*?]/.test(pattern)) return { pattern, matchesAll: false, test: (value) => value === pattern };
  let source = "";
  let lastWasStar = false;
  for (const ch of pattern) {
    // Runs of `*` collapse into one `.*`: same meaning, no needless backtracking.
    if (ch === "*") source += lastWasStar ? "" : ".*";
    else if (ch === "?") source += ".";
    else source += ch.replace(REGEX_SPECIALS, "\\$&");
    lastWasStar = ch === "*";
  }
  // `s` so that `*` spans newlines too; `u` so that `?` is one code point, not one UTF-16 unit.
  const re = new RegExp(`^${source}$`, "su");
  return { pattern, matchesAll: false, test: (value) => re.test(value) };
}

/** True when the string contains glob wildcards. */
export function isGlob(pattern: string): boolean {
  return /[*?]/.test(pattern);
}
