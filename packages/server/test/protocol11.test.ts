import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ErrorCode, HEADER_TIMESTAMP, HEADER_TWIST_ID, PROTOCOL_VERSIONS, expandMessage, utf8Length, type Frame } from "@arqon/core";
import { payloadOf, startGateway, type TestClient, type TestGateway } from "../src/testing.js";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

/** The raw text of the frame `client.frames[index]` was decoded from. */
function rawOf(client: TestClient, frame: Frame): string {
  const text = client.raw[client.frames.indexOf(frame)];
  if (typeof text !== "string") throw new Error("not a text frame");
  return text;
}

describe("protocol 1.1 - negotiation", () => {
  it("negotiation - 1.0 without asking, 1.1 with ?protocol=1.1, and welcome says which", async () => {
    gw = await startGateway();
    expect((await gw.client()).welcome.protocol).toBe("1.0");
    expect((await gw.client({ protocol: "1.0" })).welcome.protocol).toBe("1.0");
    expect((await gw.client({ protocol: "1.1" })).welcome.protocol).toBe("1.1");
    const version = (await (await fetch(`${gw.httpUrl}/version`)).json()) as { protocol: string; protocols: string[] };
    expect(version).toMatchObject({ protocol: "1.0", protocols: [...PROTOCOL_VERSIONS] });
  });

  it("negotiation - an unknown version in the query is refused before the upgrade with HTTP 400 ARQ_PROTOCOL_UNSUPPORTED", async () => {
    gw = await startGateway();
    const token = await gw.token();
    for (const v of ["2.0", "abc", "", "1.1.0"]) {
      const res = await gw.upgrade({ path: `/ws?protocol=${encodeURIComponent(v)}`, headers: { authorization: `Bearer ${token}` } });
      expect(res.status, v).toBe(400);
      expect(res.json?.error?.code, v).toBe(ErrorCode.PROTOCOL_UNSUPPORTED);
      expect(res.json?.error?.message).toContain("1.0, 1.1");
    }
    // The gateway is unharmed.
    expect((await gw.client({ protocol: "1.1" })).welcome.protocol).toBe("1.1");
  });

  it("negotiation - hello switches a 1.0 connection to 1.1; an unknown version gets an error and changes nothing", async () => {
    gw = await startGateway();
    const alice = await gw.client({ sub: "alice" });
    const bob = await gw.client({ sub: "bob" });
    await bob.subscribe("lobby");
    const refused = await bob.request({ type: "hello", protocol: "9.9" });
    expect(refused).toMatchObject({ type: "error", error: { code: ErrorCode.PROTOCOL_UNSUPPORTED } });
    expect(refused.error?.message).toContain("9.9");
    await alice.publish("lobby", 1);
    const before = await bob.next("message", "lobby");
    expect(JSON.parse(rawOf(bob, before))).toMatchObject({ type: "message", epoch: expect.any(String) });

    const welcome = await bob.request({ type: "hello", protocol: "1.1", version: "test/1" });
    expect(welcome).toMatchObject({ type: "welcome", protocol: "1.1", clientId: bob.clientId });
    await alice.publish("lobby", 2);
    const after = await bob.next("message", "lobby");
    const text = rawOf(bob, after);
    expect(text.startsWith('{"m":"lobby",')).toBe(true);
    expect(JSON.parse(text).e).toBeUndefined(); // the subscription was told the epoch already
    expect(payloadOf(after)).toBe(2);

    const back = await bob.request({ type: "hello", protocol: "1.0" });
    expect(back.protocol).toBe("1.0");
    await alice.publish("lobby", 3);
    expect(JSON.parse(rawOf(bob, await bob.next("message", "lobby")))).toMatchObject({ type: "message", offset: 3 });
    // A hello without protocol keeps the version and says it.
    expect((await bob.request({ type: "hello" })).protocol).toBe("1.0");
  });
});

describe("protocol 1.1 - message frames", () => {
  it("live message - an ordinary room message costs at most 80 bytes over its payload (77 in the docs' example)", async () => {
    gw = await startGateway();
    for (let i = 0; i < 1200; i++) await gw.server.publish("acme", "lobby", { n: i });
    const alice = await gw.client({ sub: "alice" });
    const bob = await gw.client({ sub: "bob", protocol: "1.1" });
    const old = await gw.client({ sub: "carol" });
    const sub = await bob.subscribe("lobby");
    await old.subscribe("lobby");
    expect(sub.offset).toBe(1200);
    const ack = await alice.publish("lobby", { text: "hi" });
    const msg = await bob.next("message", "lobby");
    const text = rawOf(bob, msg);
    const overhead = utf8Length(text) - '{"text":"hi"}'.length;
    expect(overhead).toBeLessThanOrEqual(80);
    expect(JSON.parse(text)).toEqual({ m: "lobby", i: ack.id, o: 1201, t: msg.timestamp, s: "alice", p: { text: "hi" } });
    expect(String(msg.timestamp)).toHaveLength(13);
    // The same message on a 1.0 connection of the same room, for comparison: every field, both headers, the epoch.
    const oldMsg = await old.next("message", "lobby");
    const oldText = rawOf(old, oldMsg);
    expect(utf8Length(oldText) - '{"text":"hi"}'.length).toBeGreaterThan(180);
    // The 1.1 frame with the subscription's epoch and the default headers put back is the 1.0 frame.
    expect(expandMessage(msg, sub.epoch)).toEqual(oldMsg);
  });

  it("live message - other headers and a non-default twist id are still sent", async () => {
    gw = await startGateway();
    const alice = await gw.client({ sub: "alice" });
    const bob = await gw.client({ sub: "bob", protocol: "1.1" });
    await bob.subscribe("lobby");
    await alice.publish("lobby", "x", { headers: { [HEADER_TWIST_ID]: "draft-2", trace: "t1" } });
    await alice.publish("lobby", "y", { headers: { [HEADER_TWIST_ID]: "main" } });
    const [twisted, main] = await bob.collect(2, (f) => f.type === "message");
    expect(twisted!.headers).toEqual({ [HEADER_TWIST_ID]: "draft-2", trace: "t1" });
    expect(main!.headers).toBeUndefined();
    expect(rawOf(bob, twisted!)).not.toContain(HEADER_TIMESTAMP);
  });

  it("recovery and history - subscribed and history_page carry the epoch, their messages do not", async () => {
    gw = await startGateway();
    const alice = await gw.client({ sub: "alice" });
    const first = await alice.publish("lobby", 1);
    for (let i = 2; i <= 4; i++) await alice.publish("lobby", i);
    const bob = await gw.client({ sub: "bob", protocol: "1.1" });
    const sub = await bob.subscribe("lobby", { since: { offset: 1, epoch: first.epoch! } });
    expect(sub).toMatchObject({ type: "subscribed", recovered: true, offset: 4, epoch: first.epoch });
    // The recovered messages ride in the reply (compact, without the reply's epoch).
    const replayed = sub.messages!;
    expect(replayed.map((m) => m.offset)).toEqual([2, 3, 4]);
    for (const m of JSON.parse(rawOf(bob, sub)).messages) {
      expect(m.e).toBeUndefined();
      expect(m.m).toBe("lobby");
    }
    await alice.publish("lobby", 5);
    const live = await bob.next("message", "lobby");
    expect(live).toMatchObject({ offset: 5 });
    expect(live.epoch).toBeUndefined();

    const page = await bob.request({ type: "history", room: "lobby", history: { fromOffset: 1, limit: 10 } });
    expect(page).toMatchObject({ type: "history_page", epoch: first.epoch, offset: 5 });
    const raw = JSON.parse(rawOf(bob, page));
    expect(raw.messages).toHaveLength(5);
    expect(raw.messages[0]).toMatchObject({ m: "lobby", o: 1, s: "alice", p: 1 });
    expect(raw.messages[0].e).toBeUndefined();
    expect(page.messages!.map((m) => expandMessage(m, page.epoch).epoch)).toEqual(Array(5).fill(first.epoch));
  });

  it("protobuf - 1.1 leaves out the default headers and the known epoch; 1.0 protobuf keeps them", async () => {
    gw = await startGateway();
    const alice = await gw.client({ sub: "alice" });
    const p11 = await gw.client({ sub: "bob", codec: "protobuf", protocol: "1.1" });
    const p10 = await gw.client({ sub: "carol", codec: "protobuf" });
    const sub = await p11.subscribe("lobby");
    await p10.subscribe("lobby");
    await alice.publish("lobby", { text: "hi" });
    const m11 = await p11.next("message", "lobby");
    const m10 = await p10.next("message", "lobby");
    expect(m11.headers).toBeUndefined();
    expect(m11.epoch).toBeUndefined();
    expect(m10.epoch).toBe(sub.epoch);
    expect(expandMessage(m11, sub.epoch)).toEqual(m10);
    const size = (c: TestClient, f: Frame) => (c.raw[c.frames.indexOf(f)] as Uint8Array).length;
    expect(size(p11, m11)).toBeLessThan(size(p10, m10) - 40);
  });

  it("wscat - a person types ?protocol=1.1 and reads compact messages; bad frames never hurt the gateway", async () => {
    gw = await startGateway();
    const token = await gw.token({ sub: "wscat-user" });
    const ws = new WebSocket(`${gw.url}?token=${token}&protocol=1.1`);
    const texts: string[] = [];
    ws.on("message", (data: Buffer) => texts.push(data.toString("utf8")));
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    const until = async (predicate: (t: string) => boolean): Promise<string> => {
      for (let i = 0; i < 300; i++) {
        const hit = texts.find(predicate);
        if (hit !== undefined) return hit;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`not received; got ${texts.join("\n")}`);
    };
    expect(JSON.parse(await until((t) => t.includes('"welcome"')))).toMatchObject({ protocol: "1.1" });
    ws.send('{"type":"subscribe","room":"lobby","requestId":"1"}');
    await until((t) => t.includes('"subscribed"'));
    ws.send('{"m":"lobby","p":1}');
    ws.send('{"type":"hello","protocol":11}');
    ws.send('{"type":"publish","room":"lobby","payload":{"text":"hi"},"echo":true}');
    const msg = await until((t) => t.startsWith('{"m":'));
    expect(JSON.parse(msg)).toMatchObject({ m: "lobby", o: 1, s: "wscat-user", p: { text: "hi" } });
    const errors = texts.filter((t) => t.includes('"error"')).map((t) => (JSON.parse(t) as Frame).error?.code);
    expect(errors).toEqual([ErrorCode.FRAME_UNEXPECTED, ErrorCode.FRAME_WRONG_TYPE]);
    ws.close();
  });
});
