import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor, page } from "./aggregate.js";
import { decodeHeaderValue, looksModern } from "./protocol.js";

describe("2026-07-28 header values", () => {
  it("decodes the Base64 sentinel and passes plain values through", () => {
    expect(decodeHeaderValue("get_weather")).toBe("get_weather");
    expect(decodeHeaderValue(`=?base64?${Buffer.from("Hello, 世界").toString("base64")}?=`)).toBe(
      "Hello, 世界",
    );
    expect(decodeHeaderValue("=?base64?***?=")).toBeNull();
  });

  it("tells eras apart by revision", () => {
    expect(looksModern("2026-07-28")).toBe(true);
    expect(looksModern("2025-11-25")).toBe(false);
    expect(looksModern("garbage")).toBe(false);
  });
});

describe("gateway pagination cursors", () => {
  it("pages through a merged list and rejects foreign or forged cursors", () => {
    const items = Array.from({ length: 250 }, (_, i) => ({ name: `t${i}` }));
    const first = page(items, undefined, "tools/list");
    expect(first.items).toHaveLength(100);
    const second = page(items, first.nextCursor, "tools/list");
    expect(second.items[0]).toEqual({ name: "t100" });
    const third = page(items, second.nextCursor, "tools/list");
    expect(third.items).toHaveLength(50);
    expect(third.nextCursor).toBeUndefined();
    expect(() => decodeCursor(encodeCursor(100, "prompts/list"), "tools/list")).toThrow(/cursor/);
    expect(() => decodeCursor("!!!", "tools/list")).toThrow(/cursor/);
    expect(() => decodeCursor(42, "tools/list")).toThrow(/cursor/);
  });
});
