import { describe, expect, it } from "vitest";
// @ts-expect-error -- a plain .mjs build script without type declarations
import { ENTRIES, bundle } from "../scripts/browser-bundle.mjs";

interface Bundle {
  bytes: number;
  gzip: number;
  inputs: string[];
  code: Uint8Array;
}

const build = bundle as (entry: string) => Promise<Bundle>;
const entries = ENTRIES as { json: string; protobuf: string; webhooks: string };

describe("browser bundle", () => {
  it("bundle - the JSON-only browser bundle carries neither protobufjs, nor ws, nor the delta encoder", async () => {
    const b = await build(entries.json);
    expect(b.inputs.some((i) => i.includes("isomorphic-ws/browser.js"))).toBe(true);
    expect(b.inputs.some((i) => /node_modules\/ws\//.test(i))).toBe(false);
    const text = new TextDecoder().decode(b.code);
    // Clients only apply deltas: our decoder is in, the fossil-delta package (encoder and all) is not.
    expect(text).toContain("checksum mismatch: the delta was made against another base");
    expect(["unknown delta operator", "insert count exceeds size of delta"].filter((m) => text.includes(m))).toEqual([]);
    // Markers of protobufjs's runtime and of the generated arqon.v1 classes; none may survive tree-shaking.
    const markers = ["LongBits", "index out of range"];
    expect(markers.filter((m) => text.includes(m))).toEqual([]);
    // The server-API client (@arqon/sdk/server) is Node-only and never part of the browser bundle.
    expect(["ArqonApiError", "x-api-key", "/api/v1/"].filter((m) => text.includes(m))).toEqual([]);
    expect(b.gzip).toBeGreaterThan(1000);
  });

  it("bundle - the protobuf entry pulls the protobuf codec in", async () => {
    const b = await build(entries.protobuf);
    const text = new TextDecoder().decode(b.code);
    expect(["LongBits", "index out of range"].filter((m) => text.includes(m))).toEqual(["LongBits", "index out of range"]);
    expect(b.bytes).toBeGreaterThan((await build(entries.json)).bytes);
  });

  it("bundle - the webhooks bundle and the JSON bundle import no Node built-in and no ws", async () => {
    const webhooks = await build(entries.webhooks);
    const json = await build(entries.json);
    for (const b of [webhooks, json]) {
      const text = new TextDecoder().decode(b.code);
      expect(text.match(/["'`]node:[a-z_/]+["'`]/g) ?? []).toEqual([]);
      expect(text.match(/\brequire\(/g) ?? []).toEqual([]);
    }
    const text = new TextDecoder().decode(webhooks.code);
    expect(text).toContain("crypto.subtle");
    // verifyWebhook brings neither the client nor protobufjs along.
    expect(["LongBits", "WebSocket", "ArqonClient"].filter((m) => text.includes(m))).toEqual([]);
    expect(webhooks.gzip).toBeLessThan(4000);
  });
});
