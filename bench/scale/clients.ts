/**
 * One client process of the scale benchmark: opens `count` WebSocket connections round-robin over the gateway URLs
 * (at most `inFlight` handshakes at a time), subscribes each to bench/all, then reports broadcast arrival times.
 * IPC in: {type:"start", urls, count, inFlight, token}, {type:"expect", t}, {type:"stop"}. IPC out: {type:"connected",
 * ms, failed, open, reasons}, {type:"expecting", t}, {type:"arrived", t, count, lastAt}.
 */
import WebSocket from "ws";

const sockets: WebSocket[] = [];
let expecting: { t: number; count: number; lastAt: number; timer?: NodeJS.Timeout } | undefined;
const now = () => performance.timeOrigin + performance.now();

function onMessage(data: WebSocket.RawData): void {
  const text = data.toString();
  if (expecting === undefined || !text.includes('"type":"message"')) return;
  const frame = JSON.parse(text) as { payload?: { t?: number } };
  if (frame.payload?.t !== expecting.t) return;
  expecting.count++;
  expecting.lastAt = now();
  if (expecting.count === sockets.length) report();
}

function report(): void {
  if (expecting === undefined) return;
  clearTimeout(expecting.timer);
  process.send!({ type: "arrived", t: expecting.t, count: expecting.count, lastAt: expecting.lastAt });
  expecting = undefined;
}

async function start(urls: string[], count: number, inFlight: number, token: string): Promise<void> {
  const t0 = now();
  let next = 0;
  let failed = 0;
  const reasons: string[] = [];
  async function one(i: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const ws = new WebSocket(`${urls[i % urls.length]}?token=${token}`, { perMessageDeflate: false });
      const timer = setTimeout(() => {
        failed++;
        if (reasons.length < 5) reasons.push("no subscribed within 60 s");
        ws.terminate();
        resolve();
      }, 60_000);
      ws.on("message", (data) => {
        const text = data.toString();
        if (text.includes('"type":"welcome"')) ws.send('{"type":"subscribe","room":"all","requestId":"s"}');
        else if (text.includes('"type":"error"') && reasons.length < 5) reasons.push(text.slice(0, 200));
        else if (text.includes('"type":"subscribed"')) {
          clearTimeout(timer);
          sockets.push(ws);
          ws.removeAllListeners("message");
          ws.on("message", onMessage);
          resolve();
        }
      });
      ws.on("unexpected-response", (_req, res) => {
        if (reasons.length < 5) reasons.push(`upgrade answered ${res.statusCode}`);
      });
      ws.on("error", (error) => {
        clearTimeout(timer);
        failed++;
        if (reasons.length < 5) reasons.push(error.message);
        resolve();
      });
    });
  }
  await Promise.all(
    Array.from({ length: Math.min(inFlight, count) }, async () => {
      while (next < count) await one(next++);
    }),
  );
  process.send!({ type: "connected", ms: now() - t0, failed, open: sockets.length, reasons });
}

process.on("message", (msg: { type: string; urls?: string[]; count?: number; inFlight?: number; token?: string; t?: number }) => {
  if (msg.type === "start") void start(msg.urls!, msg.count!, msg.inFlight!, msg.token!);
  else if (msg.type === "expect") {
    expecting = { t: msg.t!, count: 0, lastAt: 0 };
    expecting.timer = setTimeout(report, 10_000);
    process.send!({ type: "expecting", t: msg.t });
  } else if (msg.type === "stop") {
    for (const ws of sockets) ws.terminate();
    process.exit(0);
  }
});
