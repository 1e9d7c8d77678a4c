import { describe, expect, it } from "vitest";
import { retainable } from "../src/slab.js";

describe("retainable payloads", () => {
  it("small payloads are copied into a shared slab, as plain Uint8Array views with the same bytes", () => {
    const a = new TextEncoder().encode('{"text":"hi"}');
    const b = new TextEncoder().encode('{"text":"there"}');
    const ra = retainable(a);
    const rb = retainable(b);
    expect(ra).not.toBe(a);
    expect(Object.getPrototypeOf(ra)).toBe(Uint8Array.prototype);
    expect(ra).toEqual(a);
    expect(rb).toEqual(b);
    expect(ra.buffer).toBe(rb.buffer);
    expect(ra.buffer.byteLength).toBeGreaterThan(ra.byteLength);
    // The copy is independent of the original (a decoded view into a WebSocket message is not kept alive).
    a[0] = 0;
    expect(ra[0]).toBe(0x7b);
  });

  it("empty and large payloads are kept as they are; a full slab is replaced, never overrun", () => {
    const empty = new Uint8Array(0);
    const big = new Uint8Array(4096).fill(7);
    expect(retainable(empty)).toBe(empty);
    expect(retainable(big)).toBe(big);
    const views = Array.from({ length: 40 }, (_, i) => retainable(new Uint8Array(1000).fill(i)));
    views.forEach((v, i) => expect(v.every((x) => x === i)).toBe(true));
    expect(new Set(views.map((v) => v.buffer)).size).toBeGreaterThan(1);
  });
});
