import { parseArgs } from "node:util";
import WebSocket from "ws";
import { decodeFrame } from "@arqon/core";
import { startGateway } from "@arqon/server/testing";

/**
 * Recovery latency: fills a room's history, then times a raw-ws `subscribe` with `since` of `--missed` messages, from
 * the send to the last recovered message (in the reply's `messages` list or a message frame), for protocol 1.0 and
 * 1.1, JSON and protobuf. The first run of each combination is reported as cold, then `--runs` warm runs give the
 * median and p90. Loopback; the gateway runs in this process (its work and the client's share one event loop).
 *
 *   npm run recovery -w @arqon/bench -- --missed 500 --runs 50
 */
const { values } = parseArgs({ options: { missed: { type: "string", default: "500" }, runs: { type: "string", default: "50" } } });
const missed = Number(values.missed);
const runs = Math.min(Number(values.runs), 1000);

const gw = await startGateway({ limits: { publishRatePerSecond: 1_000_000 } });
try {
  const pub = await gw.client({ sub: "pub" });
  const first = await pub.publish("bench", { i: 0, text: "x".repeat(64) });
  for (let i = 1; i <= missed; i++) await pub.publish("bench", { i, text: "x".repeat(64) });
  const last = first.offset! + missed;
  const token = await gw.token({ sub: "rec" });
  console.log(`recovery of ${missed} messages (payload ~80 B), ${runs} warm runs; ms from subscribe to the last message`);
  console.log("protocol codec    cold    median  p90     frames");
  for (const codec of ["json", "protobuf"] as const) {
    for (const protocol of ["1.0", "1.1"] as const) {
      const times: number[] = [];
      let frames = 0;
      for (let r = 0; r <= runs; r++) {
        const ws = new WebSocket(`${gw.url}?protocol=${protocol}${codec === "protobuf" ? "&codec=protobuf" : ""}`, { headers: { authorization: `Bearer ${token}` } });
        await new Promise<void>((resolve, reject) => { ws.once("message", () => resolve()); ws.once("error", reject); });
        frames = 0;
        const done = new Promise<number>((resolve) => {
          ws.on("message", (data: Buffer, binary: boolean) => {
            const f = decodeFrame(binary ? new Uint8Array(data) : data.toString("utf8"), { from: "any" });
            if (!f.ok) return;
            const fr = f.frame;
            if (fr.type !== "subscribed" && fr.type !== "message") return;
            frames++;
            const tail = fr.type === "subscribed" ? fr.messages?.at(-1)?.offset : fr.offset;
            if (tail === last) resolve(performance.now());
          });
        });
        const t0 = performance.now();
        ws.send(JSON.stringify({ type: "subscribe", room: "bench", requestId: "s", since: { offset: first.offset, epoch: first.epoch } }));
        times.push((await done) - t0);
        ws.close();
      }
      const cold = times.shift()!;
      times.sort((a, b) => a - b);
      const q = (p: number): string => times[Math.min(times.length - 1, Math.floor(p * times.length))]!.toFixed(2);
      console.log(`${protocol.padEnd(9)}${codec.padEnd(10)}${cold.toFixed(2).padEnd(8)}${q(0.5).padEnd(8)}${q(0.9).padEnd(8)}${frames}`);
    }
  }
} finally {
  await gw.close();
}
