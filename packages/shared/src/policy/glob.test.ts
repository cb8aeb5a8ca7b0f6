import { describe, expect, it } from "vitest";
import { compileGlob, isGlob } from "./glob.js";

describe("compileGlob", () => {
  it("matches literals exactly", () => {
    const g = compileGlob("get_issue");
    expect(g.test("get_issue")).toBe(true);
    expect(g.test("get_issues")).toBe(false);
    expect(g.test("xget_issue")).toBe(false);
    expect(g.matchesAll).toBe(false);
  });

  it("`*` matches any run of characters, including none, anchored at both ends", () => {
    const g = compileGlob("get_*");
    expect(g.test("get_")).toBe(true);
    expect(g.test("get_issue")).toBe(true);
    expect(g.test("forget_issue")).toBe(false);
    const suffix = compileGlob("*_user");
    expect(suffix.test("delete_user")).toBe(true);
    expect(suffix.test("delete_users")).toBe(false);
    const middle = compileGlob("a*b*c");
    expect(middle.test("abc")).toBe(true);
    expect(middle.test("a--b--c")).toBe(true);
    expect(middle.test("a--c--b")).toBe(false);
  });

  it("`?` matches exactly one character (one code point)", () => {
    const g = compileGlob("v?");
    expect(g.test("v1")).toBe(true);
    expect(g.test("v")).toBe(false);
    expect(g.test("v12")).toBe(false);
    expect(g.test("v😀")).toBe(true);
  });

  it("`*` alone (or a run of them) matches everything, even the empty string and newlines", () => {
    for (const p of ["*", "**", "***"]) {
      const g = compileGlob(p);
      expect(g.matchesAll).toBe(true);
      expect(g.test("")).toBe(true);
      expect(g.test("any\nthing")).toBe(true);
    }
    expect(compileGlob("a*").test("a\nb")).toBe(true);
  });

  it("treats regex specials literally", () => {
    const g = compileGlob("a.b+c(d)[e]{f}|^$\\/-*");
    expect(g.test("a.b+c(d)[e]{f}|^$\\/-tail")).toBe(true);
    expect(g.test("aXb+c(d)[e]{f}|^$\\/-tail")).toBe(false);
    expect(compileGlob("file.read").test("fileXread")).toBe(false);
    expect(compileGlob("x.?").test("x.y")).toBe(true);
    expect(compileGlob("x.?").test("xyy")).toBe(false);
  });

  it("treats a run of `*` like one `*`", () => {
    const g = compileGlob(`${"*".repeat(50)}a`);
    expect(g.test("b".repeat(10_000))).toBe(false);
    expect(g.test(`${"b".repeat(10_000)}a`)).toBe(true);
  });

  it("matches `*a*a*a…*b` against a long near-miss at once (no backtracking)", () => {
    // Compiled to a regular expression this pattern backtracks polynomially and never finishes.
    const g = compileGlob(`${"*a".repeat(30)}*b`);
    expect(g.test("a".repeat(50_000))).toBe(false);
    expect(g.test(`${"a".repeat(50_000)}b`)).toBe(true);
    const q = compileGlob(`${"*?a".repeat(30)}*b`);
    expect(q.test("a".repeat(50_000))).toBe(false);
    expect(q.test(`${"xa".repeat(30)}b`)).toBe(true);
  });

  it("agrees with the regular-expression reading of a glob on random patterns and strings", () => {
    // The glob's meaning, spelled as a regular expression: the reference the matcher must agree with.
    const reference = (pattern: string) => {
      let source = "";
      for (const ch of pattern) {
        if (ch === "*") source += ".*";
        else if (ch === "?") source += ".";
        else source += ch.replace(/[.+^${}()|[\]\\/]/g, "\\$&");
      }
      return new RegExp(`^${source}$`, "su");
    };
    // A small seeded generator (mulberry32): reproducible, and a failure prints its inputs.
    let seed = 0x5eed;
    const next = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = (alphabet: string[], max: number) =>
      Array.from(
        { length: Math.floor(next() * (max + 1)) },
        () => alphabet[Math.floor(next() * alphabet.length)],
      ).join("");
    const patternAlphabet = ["a", "b", "*", "?", ".", "😀", "\n"];
    const valueAlphabet = ["a", "b", ".", "😀", "\n"];
    for (let i = 0; i < 3000; i++) {
      const pattern = pick(patternAlphabet, 7);
      const re = reference(pattern);
      const glob = compileGlob(pattern);
      for (let j = 0; j < 10; j++) {
        const value = pick(valueAlphabet, 9);
        expect(glob.test(value), `${JSON.stringify(pattern)} on ${JSON.stringify(value)}`).toBe(
          re.test(value),
        );
      }
    }
  });

  it("isGlob tells wildcards from literals", () => {
    expect(isGlob("get_*")).toBe(true);
    expect(isGlob("v?")).toBe(true);
    expect(isGlob("github")).toBe(false);
  });
});
