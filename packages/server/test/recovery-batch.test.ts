import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { decodeFrame, expandMessage, type Frame } from "@arqon/core";
import { startGateway, type TestGateway } from "../src/testing.js";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

/** A raw ws client that records every frame as it came (one entry per WebSocket frame). */
async function rawClient(g: TestGateway, protocol: "1.0" | "1.1"): Promise<{ ws: WebSocket; frames: Frame[] }> {
  const token = await g.token({ sub: "raw" });
  const ws = new WebSocket(`${g.url}?protocol=${protocol}`, { headers: { authorization: `Bearer ${token}` } });
  const frames: Frame[] = [];
  ws.on("message", (data: Buffer, binary: boolean) => {
    const r = decodeFrame(binary ? new Uint8Array(data) : data.toString("utf8"), { from: "any" });
    if (r.ok) frames.push(r.frame);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return { ws, frames };
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("recovery in one frame (protocol 1.1)", () => {
  it("a 1.1 subscribe with since gets the N missed messages in the subscribed reply, one frame; 1.0 gets N message frames", async () => {
    gw = await startGateway();
    const alice = await gw.client({ sub: "alice" });
    const first = await alice.publish("lobby", 0);
    const N = 50;
    for (let i = 1; i <= N; i++) await alice.publish("lobby", i);
    for (const protocol of ["1.1", "1.0"] as const) {
      const { ws, frames } = await rawClient(gw, protocol);
      ws.send(JSON.stringify({ type: "subscribe", room: "lobby", requestId: "s1", since: { offset: first.offset, epoch: first.epoch } }));
      if (protocol === "1.1") {
        await until(() => frames.some((f) => f.type === "subscribed"));
        await new Promise((r) => setTimeout(r, 50));
        const after = frames.filter((f) => f.type === "subscribed" || f.type === "message");
        expect(after.map((f) => f.type)).toEqual(["subscribed"]);
        const reply = after[0]!;
        expect(reply).toMatchObject({ type: "subscribed", recovered: true, epoch: first.epoch });
        const msgs = reply.messages!.map((m) => expandMessage(m, reply.epoch));
        expect(msgs.map((m) => m.offset)).toEqual(Array.from({ length: N }, (_, i) => first.offset! + 1 + i));
        expect(msgs.every((m) => m.epoch === first.epoch)).toBe(true);
      } else {
        await until(() => frames.filter((f) => f.type === "message").length === N);
        const reply = frames.find((f) => f.type === "subscribed")!;
        expect(reply.messages).toBeUndefined();
      }
      ws.close();
    }
  });

  it("split - what does not fit in maxFrameBytes follows as message frames, in order; a live message after them", async () => {
    gw = await startGateway({ limits: { maxFrameBytes: 64 * 1024 } });
    const alice = await gw.client({ sub: "alice" });
    const first = await alice.publish("lobby", "x");
    const N = 40;
    const big = "y".repeat(4000);
    for (let i = 1; i <= N; i++) await alice.publish("lobby", `${i}:${big}`);
    const { ws, frames } = await rawClient(gw, "1.1");
    ws.send(JSON.stringify({ type: "subscribe", room: "lobby", requestId: "s1", since: { offset: first.offset, epoch: first.epoch } }));
    await until(() => frames.some((f) => f.type === "subscribed"));
    const reply = frames.find((f) => f.type === "subscribed")!;
    const inReply = reply.messages?.length ?? 0;
    expect(inReply).toBeGreaterThan(0);
    expect(inReply).toBeLessThan(N);
    await until(() => frames.filter((f) => f.type === "message").length === N - inReply);
    await alice.publish("lobby", "live");
    await until(() => frames.filter((f) => f.type === "message").length === N - inReply + 1);
    const offsets = [...reply.messages!, ...frames.filter((f) => f.type === "message")].map((m) => m.offset);
    expect(offsets).toEqual(Array.from({ length: N + 1 }, (_, i) => first.offset! + 1 + i));
    ws.close();
  });

  it("epoch - the reply tells the epoch: its list messages and the next live message of the same epoch leave it out", async () => {
    gw = await startGateway();
    const alice = await gw.client({ sub: "alice" });
    const first = await alice.publish("lobby", 1);
    await alice.publish("lobby", 2);
    const { ws, frames } = await rawClient(gw, "1.1");
    ws.send(JSON.stringify({ type: "subscribe", room: "lobby", requestId: "s1", since: { offset: first.offset, epoch: first.epoch } }));
    await until(() => frames.some((f) => f.type === "subscribed"));
    const reply = frames.find((f) => f.type === "subscribed")!;
    expect(reply.messages).toHaveLength(1);
    expect(reply.messages![0]!.epoch).toBeUndefined();
    await alice.publish("lobby", 3);
    await until(() => frames.some((f) => f.type === "message"));
    expect(frames.find((f) => f.type === "message")!.epoch).toBeUndefined();
    ws.close();
  });
});
