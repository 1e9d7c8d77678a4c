import { describe, expect, it } from "vitest";
import { createDelta, decodeFrame, jsonBytes, roomKey, type Frame, type ProtocolVersion } from "@arqon/core";
import type { Connection, OutFrame, Subscription } from "../src/connection.js";
import { Fanout } from "../src/fanout.js";
import { ServerMetrics } from "../src/metrics.js";

/** The part of a Connection the fan-out touches: identity, codec, protocol and the outbound queue. */
function fakeConnection(id: string, codec: "json" | "protobuf", protocol: ProtocolVersion): Connection & { out: OutFrame[] } {
  const out: OutFrame[] = [];
  return { id, codec, protocol, out, closing: false, enqueue: (f: OutFrame) => out.push(f) } as unknown as Connection & { out: OutFrame[] };
}

function subscription(conn: Connection, toldEpoch: string | undefined, delta = false): Subscription {
  return {
    conn,
    key: roomKey("acme", "lobby"),
    room: "lobby",
    seesPresence: true,
    buffer: null,
    inPresence: false,
    joinedAt: 0,
    closed: false,
    lastOffset: 0,
    epoch: toldEpoch,
    toldEpoch,
    delta,
    deltaBase: 0,
  };
}

function message(offset: number, epoch: string, value: unknown = { text: "hi", n: offset }): Frame {
  const ts = 1796597881414 + offset;
  return {
    type: "message",
    id: `-MD6Qrtr-${offset.toString(36)}`,
    room: "lobby",
    payload: jsonBytes(value),
    headers: { "x-timestamp": String(ts), "x-twist-id": "main" },
    offset,
    epoch,
    timestamp: ts,
    sender: "alice",
  };
}

function decoded(out: OutFrame): Frame {
  const result = decodeFrame(out.binary ? new Uint8Array(out.data) : out.data.toString("utf8"), { from: "any" });
  if (!result.ok) throw new Error(result.error.message);
  return result.frame;
}

describe("fan-out - protocol 1.1", () => {
  it("fan-out - one buffer per form, shared by every subscriber of that form; the epoch only after it changed", () => {
    const fanout = new Fanout(new ServerMetrics({ processMetrics: false }), 1024, () => undefined);
    const conns = [
      fakeConnection("j10", "json", "1.0"),
      fakeConnection("j11a", "json", "1.1"),
      fakeConnection("j11b", "json", "1.1"),
      fakeConnection("p10", "protobuf", "1.0"),
      fakeConnection("p11", "protobuf", "1.1"),
    ];
    const subs = conns.map((conn) => subscription(conn, "e1"));
    for (const sub of subs) fanout.add(sub, "acme");
    const key = roomKey("acme", "lobby");
    fanout.deliver(key, { frame: message(1, "e1") });
    const [j10, j11a, j11b, p10, p11] = conns.map((c) => c.out);
    expect(j11a![0]).toBe(j11b![0]);
    expect(j11a![0]!.data.toString()).toBe('{"m":"lobby","i":"-MD6Qrtr-1","o":1,"t":1796597881415,"s":"alice","p":{"text":"hi","n":1}}');
    expect(JSON.parse(j10![0]!.data.toString())).toMatchObject({ type: "message", epoch: "e1", headers: { "x-twist-id": "main" } });
    expect(decoded(p10![0]!)).toMatchObject({ epoch: "e1", headers: { "x-twist-id": "main" } });
    const p = decoded(p11![0]!);
    expect(p.epoch).toBeUndefined();
    expect(p.headers).toBeUndefined();
    expect(p11![0]!.size).toBeLessThan(p10![0]!.size);

    // The room's history was lost (new epoch): the first message of the new epoch tells it, the next ones do not.
    fanout.deliver(key, { frame: message(1, "e2") });
    fanout.deliver(key, { frame: message(2, "e2") });
    expect(JSON.parse(j11a![1]!.data.toString()).e).toBe("e2");
    expect(j11a![1]).toBe(j11b![1]);
    expect(JSON.parse(j11a![2]!.data.toString()).e).toBeUndefined();
    expect(decoded(p11![1]!).epoch).toBe("e2");
    expect(decoded(p11![2]!).epoch).toBeUndefined();
    for (const sub of subs) expect(sub.toldEpoch).toBe("e2");
  });

  it("fan-out - subscribers told different epochs get the with- and without-epoch forms of one message", () => {
    const fanout = new Fanout(new ServerMetrics({ processMetrics: false }), 1024, () => undefined);
    const told = fakeConnection("told", "json", "1.1");
    const fresh = fakeConnection("fresh", "json", "1.1");
    fanout.add(subscription(told, "e2"), "acme");
    fanout.add(subscription(fresh, "e1"), "acme");
    fanout.deliver(roomKey("acme", "lobby"), { frame: message(7, "e2") });
    expect(JSON.parse(told.out[0]!.data.toString()).e).toBeUndefined();
    expect(JSON.parse(fresh.out[0]!.data.toString()).e).toBe("e2");
  });

  it("fan-out - a message dropped as already seen does not count as telling its epoch", () => {
    const fanout = new Fanout(new ServerMetrics({ processMetrics: false }), 1024, () => undefined);
    const conn = fakeConnection("c", "json", "1.1");
    const sub = subscription(conn, "e1");
    sub.lastOffset = 5;
    fanout.add(sub, "acme");
    fanout.deliver(roomKey("acme", "lobby"), { frame: message(5, "e1") });
    expect(conn.out).toHaveLength(0);
    expect(sub.toldEpoch).toBe("e1");
  });

  it("fan-out - delta messages in 1.1 are compact too, shared per form", () => {
    const fanout = new Fanout(new ServerMetrics({ processMetrics: false }), 1024, () => undefined, createDelta);
    const a = fakeConnection("a", "json", "1.1");
    const b = fakeConnection("b", "json", "1.1");
    const old = fakeConnection("old", "json", "1.0");
    for (const conn of [a, b, old]) fanout.add(subscription(conn, "e1", true), "acme");
    const key = roomKey("acme", "lobby");
    const tick = (i: number) => ({ symbol: "ACME", name: "Acme Corporation Common Stock", exchange: "XNYS", bid: 100 + i, ask: 101 + i });
    fanout.deliver(key, { frame: message(1, "e1", tick(1)) });
    fanout.deliver(key, { frame: message(2, "e1", tick(2)) });
    expect(a.out[1]).toBe(b.out[1]);
    const compact = JSON.parse(a.out[1]!.data.toString());
    expect(compact).toMatchObject({ m: "lobby", o: 2, d: true, f: "binary" });
    expect(compact.e).toBeUndefined();
    expect(JSON.parse(old.out[1]!.data.toString())).toMatchObject({ type: "message", delta: true, epoch: "e1" });
  });
});
