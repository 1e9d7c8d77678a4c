import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryHistoryStore, jsonBytes, type Frame, type Position } from "@arqon/core";
import { openEmbeddedStorage, type EmbeddedStorage } from "../src/storage/index.js";
import { payloadOf, startGateway, type TestClient, type TestGateway } from "../src/testing.js";

let gw: TestGateway | undefined;
let storage: EmbeddedStorage | undefined;
const dirs: string[] = [];

afterEach(async () => {
  await gw?.close();
  gw = undefined;
  await storage?.close();
  storage = undefined;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const FAST = { publishRatePerSecond: 100_000, publishBurst: 100_000, maxInboundQueue: 100_000, maxRecoveryMessages: 20_000 };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Publishes 1..total into `room`, keeping at most `window` publishes unacknowledged; resolves with the acks. Reads the
 * client's frame list incrementally (waitFor rescans it from the start, which is quadratic over 10,000 acks).
 */
async function publishNumbered(client: TestClient, room: string, total: number, window: number, deadline: number): Promise<Frame[]> {
  const acks: Frame[] = [];
  let sent = 0;
  let read = 0;
  let wake: (() => void) | undefined;
  const onMessage = (): void => wake?.();
  client.ws.on("message", onMessage);
  try {
    while (acks.length < total) {
      if (Date.now() > deadline) throw new Error(`publisher stopped at ${acks.length} acks: out of time`);
      while (sent < total && sent - acks.length < window) {
        sent++;
        client.send({ type: "publish", room, payload: jsonBytes(sent), requestId: `p${sent}` });
      }
      const before = acks.length;
      for (; read < client.frames.length; read++) {
        const f = client.frames[read]!;
        if (f.type === "error") throw new Error(`publish ${f.requestId} failed: ${JSON.stringify(f.error)}`);
        if (f.type === "ack") {
          expect(f.requestId).toBe(`p${acks.length + 1}`);
          acks.push(f);
        }
      }
      if (acks.length === before) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 50);
        });
        wake = undefined;
      }
    }
  } finally {
    client.ws.off("message", onMessage);
  }
  return acks;
}

interface Session {
  subscribed: Frame;
  messages: Frame[];
}

/**
 * A subscriber that reconnects `sessions` times: each session subscribes with the last position it saw (after the
 * first), reads for a short random while, then drops the socket without a close handshake; the last session reads
 * until `total` messages arrived.
 */
async function hoppingSubscriber(
  target: TestGateway,
  room: string,
  total: number,
  sessions: number,
  deadline: number,
  start: Position,
): Promise<Session[]> {
  const out: Session[] = [];
  let position: Position = start;
  let seen = 0;
  for (let s = 0; s < sessions; s++) {
    const client = await target.client({ sub: `reader-${s}` });
    const subscribed = await client.subscribe(room, { since: position });
    expect(subscribed.type).toBe("subscribed");
    const last = s === sessions - 1;
    if (!last) {
      await sleep(30 + Math.floor(Math.random() * 60));
    } else {
      while (seen + client.frames.filter((f) => f.type === "message").length < total) {
        if (Date.now() > deadline) break;
        await sleep(10);
      }
    }
    client.ws.terminate();
    await client.closed;
    const messages = client.frames.filter((f) => f.type === "message" && f.room === room);
    out.push({ subscribed, messages });
    seen += messages.length;
    const tail = messages.at(-1);
    if (tail) position = { offset: tail.offset!, epoch: tail.epoch! };
  }
  return out;
}

async function runSeam(target: TestGateway, total: number, sessions: number): Promise<{ ms: number; sessions: Session[]; acks: Frame[] }> {
  const started = Date.now();
  // Generous for a loaded 2-core machine; unloaded, the memory run takes about 2-3 s.
  const deadline = started + 25_000;
  const room = "seam";
  const publisher = await target.client({ sub: "publisher" });
  const first = await target.client({ sub: "first" });
  // The subscriber starts from offset 0 of the room's epoch, so message 1 is part of what it must see.
  const initial = await first.subscribe(room);
  await first.close();
  const reader = hoppingSubscriber(target, room, total, sessions, deadline, { offset: 0, epoch: initial.epoch! });
  const [acks, hops] = await Promise.all([publishNumbered(publisher, room, total, 256, deadline), reader]);
  expect(initial.offset ?? 0).toBe(0);
  return { ms: Date.now() - started, sessions: hops, acks };
}

function checkSequence(result: { sessions: Session[]; acks: Frame[] }, total: number): void {
  const numbers = result.sessions.flatMap((s) => s.messages.map((m) => payloadOf(m) as number));
  const offsets = result.sessions.flatMap((s) => s.messages.map((m) => m.offset!));
  const expected = Array.from({ length: total }, (_, i) => i + 1);
  // Compare lengths first so a failure message stays short.
  expect(numbers.length).toBe(expected.length);
  expect(numbers).toEqual(expected);
  expect(offsets).toEqual(expected);
  for (const s of result.sessions) expect(s.subscribed.recovered).toBe(true);
  expect(result.acks.map((a) => a.offset)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
}

/** Time from sending a subscribe with `since` offset 0 to receiving the last of `count` recovered messages. */
async function timeRecovery(target: TestGateway, room: string, epoch: string, count: number): Promise<number> {
  const client = await target.client({ sub: "late-reader" });
  const started = performance.now();
  const reply = await client.subscribe(room, { since: { offset: 0, epoch } });
  expect(reply.recovered).toBe(true);
  const last = await client.waitFor((f) => f.type === "message" && f.offset === count, { timeoutMs: 10_000 });
  const ms = performance.now() - started;
  expect(last.offset).toBe(count);
  return ms;
}

describe("time travel - recovery seam", () => {
  it("seam - 10,000 numbered messages reach a subscriber that reconnects with its position 8 times exactly once, in order (memory history)", async () => {
    gw = await startGateway({ limits: FAST, history: new MemoryHistoryStore({ retention: { maxMessages: 20_000, maxAgeMs: 0 } }) });
    const result = await runSeam(gw, 10_000, 8);
    checkSequence(result, 10_000);
    // The reader really hopped while the flood ran: more than one session saw messages.
    expect(result.sessions.filter((s) => s.messages.length > 0).length).toBeGreaterThan(1);
    const recoveryMs = await timeRecovery(gw, "seam", result.acks[0]!.epoch!, 10_000);
    console.log(
      `seam (memory): 10,000 messages, 8 sessions, ${result.ms} ms; per session: ${result.sessions.map((s) => s.messages.length).join(", ")}; ` +
        `recovering all 10,000: ${recoveryMs.toFixed(0)} ms`,
    );
  }, 40_000);

  it("seam - the same over the embedded LMDB history (commit durability), 1,000 messages, 5 reconnects", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "arqon-seam-"));
    dirs.push(dir);
    storage = await openEmbeddedStorage({ path: dir, durability: "commit", retention: [{ pattern: "**", maxMessages: 20_000, maxAgeMs: 0 }] });
    gw = await startGateway({ limits: FAST, history: storage.history, state: storage.state, kv: storage.kv });
    // One connection's publishes are handled one after the other, each waiting for its LMDB commit: fewer messages.
    const result = await runSeam(gw, 1_000, 5);
    checkSequence(result, 1_000);
    const recoveryMs = await timeRecovery(gw, "seam", result.acks[0]!.epoch!, 1_000);
    console.log(
      `seam (lmdb): 1,000 messages, 5 sessions, ${result.ms} ms; per session: ${result.sessions.map((s) => s.messages.length).join(", ")}; ` +
        `recovering all 1,000 (744 from LMDB, 256 from the ring): ${recoveryMs.toFixed(0)} ms`,
    );
  }, 40_000);

  it("seam - publishes from four connections racing a subscribe reach it in offset order with no gap (LMDB)", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "arqon-seam-"));
    dirs.push(dir);
    storage = await openEmbeddedStorage({ path: dir, durability: "commit" });
    gw = await startGateway({ limits: FAST, history: storage.history });
    const target = gw;
    const watcher = await target.client({ sub: "watcher" });
    await watcher.subscribe("race");
    const publishers = await Promise.all([0, 1, 2, 3].map((i) => target.client({ sub: `p${i}` })));
    const late = await target.client({ sub: "late" });
    const flood = Promise.all(publishers.map((p, i) => publishNumbered(p, "race", 250, 32, Date.now() + 10_000).then((acks) => ({ i, acks }))));
    await sleep(10);
    const epoch = watcher.frames.find((f) => f.type === "subscribed")!.epoch!;
    const lateSub = await late.subscribe("race", { since: { offset: 0, epoch } });
    await flood;
    const all = await watcher.collect(1000, (f) => f.type === "message", { timeoutMs: 5000 });
    expect(all.map((m) => m.offset)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(lateSub.recovered).toBe(true);
    const lateMessages = await late.collect(1000, (f) => f.type === "message", { timeoutMs: 5000 });
    expect(lateMessages.map((m) => m.offset)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
  }, 40_000);
});
