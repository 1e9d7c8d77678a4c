import fossilDelta from "fossil-delta";
import { afterEach, describe, expect, it } from "vitest";
import { parseJsonBytes, type Frame } from "@arqon/core";
import { startGateway, type TestClient, type TestGateway } from "../src/testing.js";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

/** What a client must do with a delta subscription: rebuild each payload from the previous one it received. */
class DeltaReader {
  private last: Uint8Array | undefined;
  readonly values: unknown[] = [];
  deltas = 0;
  fulls = 0;
  wireBytes = 0;

  take(frame: Frame): void {
    let payload = frame.payload!;
    this.wireBytes += payload.length;
    if (frame.delta) {
      expect(frame.payloadFormat).toBe("binary");
      expect(this.last, `delta at offset ${frame.offset} without a base`).toBeDefined();
      payload = Uint8Array.from(fossilDelta.apply(this.last!, payload));
      this.deltas++;
    } else {
      this.fulls++;
    }
    this.last = payload;
    this.values.push(parseJsonBytes(payload));
  }
}

function tick(i: number): Record<string, unknown> {
  // A realistic ticker: a dozen fields, two of which change per tick.
  return {
    symbol: "ACME",
    exchange: "XNYS",
    currency: "USD",
    name: "Acme Corporation Common Stock",
    sector: "Industrials",
    bid: 100 + (i % 7) * 0.01,
    ask: 100.02 + (i % 7) * 0.01,
    volume: 1_000_000 + i * 100,
    open: 99.5,
    high: 101.25,
    low: 98.75,
    seq: i,
  };
}

async function messages(client: TestClient, room: string, count: number): Promise<Frame[]> {
  return client.collect(count, (f) => f.type === "message" && f.room === room, { timeoutMs: 5000 });
}

describe("time travel - delta messages", () => {
  it("delta - opted-in JSON and protobuf subscribers get deltas that rebuild exactly what a full subscriber gets, and fewer bytes", async () => {
    gw = await startGateway();
    const publisher = await gw.client({ sub: "feed" });
    const json = await gw.client({ sub: "json" });
    const proto = await gw.client({ sub: "proto", codec: "protobuf" });
    const plain = await gw.client({ sub: "plain" });
    await json.subscribe("ticker", { delta: true });
    await proto.subscribe("ticker", { delta: true });
    await plain.subscribe("ticker");
    const count = 60;
    for (let i = 0; i < count; i++) await publisher.publish("ticker", tick(i));
    const readers = { json: new DeltaReader(), proto: new DeltaReader() };
    for (const m of await messages(json, "ticker", count)) readers.json.take(m);
    for (const m of await messages(proto, "ticker", count)) readers.proto.take(m);
    const full = (await messages(plain, "ticker", count)).map((m) => parseJsonBytes(m.payload!));
    const fullBytes = plain.frames.filter((f) => f.type === "message").reduce((n, f) => n + f.payload!.length, 0);
    expect(full).toEqual(Array.from({ length: count }, (_, i) => tick(i)));
    expect(plain.frames.some((f) => f.delta)).toBe(false);
    for (const reader of Object.values(readers)) {
      expect(reader.values).toEqual(full);
      // The first message after subscribing is whole; every later one is a delta.
      expect(reader.fulls).toBe(1);
      expect(reader.deltas).toBe(count - 1);
      expect(reader.wireBytes).toBeLessThan(fullBytes / 3);
    }
    // Delta frames keep the message's position and headers.
    const second = json.frames.filter((f) => f.type === "message")[1]!;
    expect(second).toMatchObject({ offset: 2, delta: true, payloadFormat: "binary" });
    expect(second.headers?.["x-twist-id"]).toBe("main");
    console.log(`delta ticker: ${count} messages, payload bytes full ${fullBytes}, delta ${readers.json.wireBytes} (${((1 - readers.json.wireBytes / fullBytes) * 100).toFixed(1)}% saved)`);
  });

  it("delta - a full message follows a gap in what the subscriber received (its own publish without echo), a (re)subscribe with recovery, a binary payload, or a delta that is not smaller", async () => {
    gw = await startGateway();
    const other = await gw.client({ sub: "other" });
    const me = await gw.client({ sub: "me" });
    const sub = await me.subscribe("t", { delta: true });
    await other.publish("t", tick(1));
    await other.publish("t", tick(2));
    await me.publish("t", tick(3)); // not delivered to me (no echo): my base is still tick(2)
    await other.publish("t", tick(4));
    await other.publish("t", tick(5));
    let got = await messages(me, "t", 4);
    expect(got.map((m) => [m.offset, m.delta === true])).toEqual([
      [1, false],
      [2, true],
      [4, false],
      [5, true],
    ]);

    // Resubscribe on a new connection from offset 2: recovered messages and the first live one are whole.
    const again = await gw.client({ sub: "me" });
    const reply = await again.subscribe("t", { delta: true, since: { offset: 2, epoch: sub.epoch! } });
    expect(reply.recovered).toBe(true);
    await other.publish("t", tick(6));
    await other.publish("t", tick(7));
    got = await messages(again, "t", 5);
    expect(got.map((m) => [m.offset, m.delta === true])).toEqual([
      [3, false],
      [4, false],
      [5, false],
      [6, false],
      [7, true],
    ]);

    // Tiny payloads do not shrink; a binary payload always goes whole; the delta chain resumes after both.
    await other.publish("t", 1);
    await other.publish("t", 2);
    other.send({ type: "publish", room: "t", payload: new Uint8Array([1, 2, 3]), payloadFormat: "binary" });
    await other.publish("t", tick(8));
    await other.publish("t", tick(9));
    got = await messages(again, "t", 5);
    expect(got.map((m) => [m.offset, m.delta === true, m.payloadFormat ?? "json"])).toEqual([
      [8, false, "json"],
      [9, false, "json"],
      [10, false, "binary"],
      [11, false, "json"],
      [12, true, "binary"],
    ]);
    const reader = new DeltaReader();
    reader.take(got[3]!);
    reader.take(got[4]!);
    expect(reader.values).toEqual([tick(8), tick(9)]);
  });
});
