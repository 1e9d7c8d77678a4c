import { afterEach, describe, expect, it } from "vitest";
import type { Frame } from "@arqon/core";
import { payloadOf, startGateway, type TestClient, type TestGateway } from "../src/testing.js";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

const yieldTurn = () => new Promise((r) => setImmediate(r));

async function messagesOf(client: TestClient, count: number, timeoutMs: number): Promise<Frame[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = client.frames.filter((f) => f.type === "message");
    if (got.length >= count || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("coalesced writes", () => {
  // Frames queued for one socket in one turn leave in one write: copied into one buffer (up to 16 KB) or as a corked
  // writev (more). A reader that stops reading makes the server's writes to it partial (the kernel's buffers fill), so
  // its socket holds queued buffers while the other subscriber's writes go on; when it reads again it must get every
  // frame whole and in order, with nothing lost to the slow-consumer cap (raised here).
  it("a socket that holds a partial write gets every frame intact and in order while others keep receiving", async () => {
    gw = await startGateway({ limits: { maxPendingBytes: 256 * 1024 * 1024 } });
    const paused = await gw.client({ sub: "paused" });
    const reading = await gw.client({ sub: "reading" });
    await paused.subscribe("burst");
    await reading.subscribe("burst");
    const raw = (paused.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    raw.pause();
    // Turns of 10 and of 40 messages of ~1.1 KB (one copied buffer, one corked writev per socket); ~13 MB in all,
    // more than the loopback socket buffers hold for a reader that does not read.
    const pad = "p".repeat(1000);
    let total = 0;
    for (let t = 0; t < 480; t++) {
      const sent: Array<Promise<unknown>> = [];
      for (let k = t % 2 === 0 ? 10 : 40; k > 0; k--) sent.push(gw.server.publish("acme", "burst", { i: total++, pad }));
      await Promise.all(sent);
      await yieldTurn();
    }
    const fast = await messagesOf(reading, total, 30_000);
    expect(fast.map((f) => (payloadOf(f) as { i: number }).i)).toEqual(Array.from({ length: total }, (_, i) => i));
    // The paused reader has not had everything yet: some of it sits in the server's socket (partial writes).
    expect(paused.frames.filter((f) => f.type === "message").length).toBeLessThan(total);
    raw.resume();
    const slow = await messagesOf(paused, total, 30_000);
    const seqs = slow.map((f) => payloadOf(f) as { i: number; pad: string });
    expect(seqs.map((p) => p.i)).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(seqs.every((p) => p.pad === pad)).toBe(true);
    expect(paused.ws.readyState).toBe(paused.ws.OPEN);
  }, 90_000);
});
