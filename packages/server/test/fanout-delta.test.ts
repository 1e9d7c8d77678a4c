import { describe, expect, it } from "vitest";
import { createDelta, jsonBytes, roomKey, type Frame } from "@arqon/core";
import type { Connection, OutFrame, Subscription } from "../src/connection.js";
import { Fanout } from "../src/fanout.js";
import { ServerMetrics } from "../src/metrics.js";

/** The part of a Connection the fan-out touches: identity, codec and the outbound queue. */
function fakeConnection(id: string, codec: "json" | "protobuf"): Connection & { out: OutFrame[] } {
  const out: OutFrame[] = [];
  return { id, codec, out, closing: false, enqueue: (f: OutFrame) => out.push(f) } as unknown as Connection & { out: OutFrame[] };
}

function subscription(conn: Connection, delta: boolean): Subscription {
  return {
    conn,
    key: roomKey("acme", "ticker"),
    room: "ticker",
    seesPresence: true,
    buffer: null,
    inPresence: false,
    joinedAt: 0,
    closed: false,
    lastOffset: 0,
    epoch: undefined,
    toldEpoch: undefined,
    delta,
    deltaBase: 0,
  };
}

function message(offset: number, value: unknown): Frame {
  return { type: "message", room: "ticker", offset, epoch: "e1", payload: jsonBytes(value) };
}

describe("fan-out - delta messages", () => {
  it("fan-out - one delta per message per room, framed once per codec and shared by every delta subscriber", () => {
    let calls = 0;
    const fanout = new Fanout(new ServerMetrics({ processMetrics: false }), 1024, () => undefined, (a, b) => {
      calls++;
      return createDelta(a, b);
    });
    const conns = [fakeConnection("j1", "json"), fakeConnection("j2", "json"), fakeConnection("p1", "protobuf"), fakeConnection("plain", "json")];
    for (const [i, conn] of conns.entries()) fanout.add(subscription(conn, i < 3), "acme");
    const key = roomKey("acme", "ticker");
    const tick = (i: number) => ({ symbol: "ACME", name: "Acme Corporation Common Stock", exchange: "XNYS", bid: 100 + i, ask: 101 + i });
    for (let i = 1; i <= 4; i++) fanout.deliver(key, { frame: message(i, tick(i)) });
    // Message 1 has no base; messages 2-4 cost one delta each, not one per subscriber.
    expect(calls).toBe(3);
    const [j1, j2, p1, plain] = conns.map((c) => c.out);
    expect(j1).toHaveLength(4);
    for (let i = 0; i < 4; i++) {
      expect(j2![i]).toBe(j1![i]);
      expect(plain![i]!.data.toString()).not.toContain('"delta":true');
    }
    expect(j1![0]!.data.toString()).not.toContain('"delta":true');
    expect(j1![1]!.data.toString()).toContain('"delta":true');
    expect(p1![1]!.binary).toBe(true);
    expect(p1![1]!.size).toBeLessThan(plain![1]!.size);
    // A delivery already covered by the subscription's position is dropped (the recovery seam).
    fanout.deliver(key, { frame: message(3, tick(3)) });
    expect(j1).toHaveLength(4);
    // ... and does not break the delta chain.
    fanout.deliver(key, { frame: message(5, tick(5)) });
    expect(j1).toHaveLength(5);
    expect(j1![4]!.data.toString()).toContain('"delta":true');
    expect(calls).toBe(4);
  });
});
