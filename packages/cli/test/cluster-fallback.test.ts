import { beforeAll, expect, it } from "vitest";
import { describeWithNats } from "@arqon/nats/testing";
import { payloadOf, SseTestClient as SseClient, type TestGateway } from "@arqon/server/testing";
import { gatewayPair } from "./helpers/gateway-pair.js";

const SECRET = "cluster-fallback-secret-0123456789abcdef";

/**
 * The fallback transports on two gateways sharing a real nats-server, with no session affinity: a ticket from A opens
 * a stream on B, and sends that land on A reach B's session, in order.
 */
describeWithNats("fallback transports across two gateways on NATS", () => {
  const pair = gatewayPair({ secret: SECRET });
  let a: TestGateway;
  let b: TestGateway;
  beforeAll(() => {
    ({ a, b } = pair);
  });

  it("fallback cluster - a ticket from A opens a stream on B; sends posted to A and B alternately reach the session on B in order", async () => {
    const token = await a.token({ tenant: "t-fb", sub: "roamer" });
    const res = await fetch(`${a.httpUrl}/ws/ticket`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
    const { ticket } = (await res.json()) as { ticket: string };
    const s = await SseClient.open(b.httpUrl, `/ws/sse?ticket=${encodeURIComponent(ticket)}&protocol=1.1`);
    try {
      expect(s.status).toBe(200);
      const welcome = await s.frame((f) => f.type === "welcome");
      expect(welcome.tenant).toBe("t-fb");
      const reader = await a.client({ tenant: "t-fb", sub: "reader" });
      await reader.subscribe("walk");
      // Each send goes to the other node than the last, the next one only after the answer (as the SDK sends).
      const n = 40;
      for (let i = 0; i < n; i++) {
        const node = i % 2 === 0 ? a : b;
        const r = await fetch(`${node.httpUrl}/ws/send`, {
          method: "POST",
          headers: { "x-arqon-session": s.session, "content-type": "application/json" },
          body: JSON.stringify({ type: "publish", room: "walk", payload: { i }, requestId: `p${i}` }),
        });
        expect(r.status).toBe(204);
      }
      await s.until(() => s.frames.filter((f) => f.type === "ack").length === n, 10_000);
      const acks = s.frames.filter((f) => f.type === "ack");
      expect(acks.map((f) => f.requestId)).toEqual(Array.from({ length: n }, (_, i) => `p${i}`));
      await reader.waitFor((f) => f.type === "message" && (payloadOf(f) as { i: number }).i === n - 1, { timeoutMs: 10_000 });
      const got = reader.frames.filter((f) => f.type === "message").map((f) => (payloadOf(f) as { i: number }).i);
      expect(got).toEqual(Array.from({ length: n }, (_, i) => i));
      // A forwarded send for a session that exists nowhere is dropped by every node; a wrong key reaches nothing.
      const [id] = s.session.split(".");
      const stray = await fetch(`${a.httpUrl}/ws/send`, { method: "POST", headers: { "x-arqon-session": `${id}.AAAAAAAAAAAAAAAAAAAAAAAA` }, body: JSON.stringify({ type: "publish", room: "walk", payload: { forged: true } }) });
      expect(stray.status).toBe(204);
      const marker = await fetch(`${a.httpUrl}/ws/send`, { method: "POST", headers: { "x-arqon-session": s.session }, body: JSON.stringify({ type: "publish", room: "walk", payload: { i: -1 } }) });
      expect(marker.status).toBe(204);
      await reader.waitFor((f) => f.type === "message" && (payloadOf(f) as { i: number }).i === -1, { timeoutMs: 10_000 });
      expect(reader.frames.some((f) => f.type === "message" && (payloadOf(f) as { forged?: boolean }).forged === true)).toBe(false);
    } finally {
      s.close();
    }
  });

  it("fallback cluster - a stream on A follows a room published on B (one session's traffic crosses NATS like a socket's)", async () => {
    const s = await SseClient.open(a.httpUrl, "/ws/sse?protocol=1.1", { authorization: `Bearer ${await a.token({ tenant: "t-fb2", sub: "s" })}` });
    try {
      await s.frame((f) => f.type === "welcome");
      await s.request({ type: "subscribe", room: "far" });
      const pub = await b.client({ tenant: "t-fb2", sub: "p" });
      const deadline = Date.now() + 5000;
      for (let i = 0; ; i++) {
        await pub.publish("far", { settle: i });
        try {
          await s.frame((f) => f.type === "message" && f.room === "far", 0, 150);
          break;
        } catch {
          if (Date.now() > deadline) throw new Error("the stream's subscription did not settle");
        }
      }
      await pub.publish("far", { last: true });
      expect(payloadOf(await s.frame((f) => f.type === "message" && (payloadOf(f) as { last?: boolean }).last === true))).toEqual({ last: true });
    } finally {
      s.close();
    }
  });
});
