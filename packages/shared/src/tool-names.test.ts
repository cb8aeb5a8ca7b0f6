import { describe, expect, it } from "vitest";
import { namespaceUri, parseNamespacedUri, prefixName, unprefixName } from "./tool-names.js";

describe("tool names", () => {
  it("prefixes and strips", () => {
    expect(prefixName("gh_", "get_issue")).toBe("gh_get_issue");
    expect(unprefixName("gh_", "gh_get_issue")).toBe("get_issue");
    expect(unprefixName("gh_", "gl_get_issue")).toBeNull();
    expect(unprefixName("gh_", "gh_")).toBeNull();
  });
});

describe("resource URI namespacing", () => {
  it("round-trips any URI, templates included", () => {
    for (const uri of [
      "file:///etc/hosts",
      "test://template/{id}/data",
      "https://x.test/a?b=c#d",
      "urn:x:y",
    ]) {
      const ns = namespaceUri("fs", uri);
      expect(ns.startsWith("gatehouse://fs/")).toBe(true);
      expect(parseNamespacedUri(ns)).toEqual({ upstream: "fs", uri });
    }
  });

  it("refuses URIs it did not make", () => {
    expect(parseNamespacedUri("file:///x")).toBeNull();
    expect(parseNamespacedUri("gatehouse://fs")).toBeNull();
    expect(parseNamespacedUri("gatehouse://fs/")).toBeNull();
    expect(parseNamespacedUri("gatehouse:///x")).toBeNull();
  });
});
