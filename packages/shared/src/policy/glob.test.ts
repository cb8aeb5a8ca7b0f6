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

  it("isGlob tells wildcards from literals", () => {
    expect(isGlob("get_*")).toBe(true);
    expect(isGlob("v?")).toBe(true);
    expect(isGlob("github")).toBe(false);
  });
});
