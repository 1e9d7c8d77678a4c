/**
 * One client process of the scale benchmark: opens `count` WebSocket connections round-robin over the gateway URLs
 * (at most `inFlight` handshakes at a time, none started after `deadlineAt`), optionally from one loopback source
 * address (`localAddress`, for more ephemeral ports), subscribes each to bench/all, then reports per-connection
 * broadcast receive latencies. Plain `ws` clients, no SDK: after `subscribed` a socket keeps one shared listener.
 * IPC in: {type:"start", urls, count, inFlight, token, deadlineAt, localAddress?}, {type:"expect", t}, {type:"stop"}.
 * IPC out: {type:"progress", open, failed}, {type:"connected", ms, failed, open, reasons, closed},
 * {type:"expecting", t}, {type:"arrived", t, count, lastAt, latencies (ms, one per receiving socket)}.
 */
import WebSocket from "ws";
import { handleProfileMessage } from "./profiler.js";

const sockets: WebSocket[] = [];
let closedAfterOpen = 0;
const closeReasons = new Map<string, number>();
let expecting: { t: number; count: number; lastAt: number; latencies: number[]; timer?: NodeJS.Timeout } | undefined;
const now = () => performance.timeOrigin + performance.now();

/** `"t":<n>,"at":<ms>` in a broadcast's JSON payload: read without parsing the whole frame (client CPU is the limit). */
/** The broadcast's payload, in a protocol 1.0 `message` frame (`"payload"`) or a 1.1 compact one (`"p"`). */
const BROADCAST = /"p(?:ayload)?":\{"t":(\d+),"at":([\d.]+)\}/;

function onMessage(data: WebSocket.RawData): void {
  if (expecting === undefined) return;
  const at = now();
  const m = BROADCAST.exec(data.toString());
  if (m === null || Number(m[1]) !== expecting.t) return;
  expecting.count++;
  expecting.lastAt = at;
  expecting.latencies.push(Math.round((at - Number(m[2])) * 10) / 10);
  if (expecting.count >= sockets.length - closedAfterOpen) report();
}

function onClose(code: number): void {
  closedAfterOpen++;
  const k = String(code);
  closeReasons.set(k, (closeReasons.get(k) ?? 0) + 1);
}

function report(): void {
  if (expecting === undefined) return;
  clearTimeout(expecting.timer);
  const { t, count, lastAt, latencies } = expecting;
  expecting = undefined;
  process.send!({ type: "arrived", t, count, lastAt, latencies, open: sockets.length - closedAfterOpen });
}

interface Start {
  urls: string[];
  count: number;
  inFlight: number;
  token: string;
  deadlineAt: number;
  localAddress?: string;
  /** First local port: connection k binds localPort + k (explicit ports, see run.ts --local-ports). */
  localPort?: number;
}

async function start({ urls, count, inFlight, token, deadlineAt, localAddress, localPort }: Start): Promise<void> {
  const t0 = now();
  let next = 0;
  let failed = 0;
  const reasons = new Map<string, number>();
  const reason = (r: string) => reasons.set(r, (reasons.get(r) ?? 0) + 1);
  const progress = setInterval(() => process.send!({ type: "progress", open: sockets.length, failed }), 5000);
  let retried = 0;
  /** One connection, retried (at most twice, 1 s apart) when the handshake fails, as a real client would. */
  async function one(i: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const why = await attemptOne(i, attempt);
      if (why === undefined) return;
      if (attempt >= 2 || Date.now() > deadlineAt) {
        failed++;
        reason(why);
        return;
      }
      retried++;
      reason(`retried after: ${why}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  /** Resolves undefined once subscribed, else the reason it failed. */
  function attemptOne(i: number, attempt: number): Promise<string | undefined> {
    return new Promise((resolve) => {
      const url = urls[i % urls.length]!;
      const ws = new WebSocket(`${url}${url.includes("?") ? "&" : "?"}token=${token}`, {
        perMessageDeflate: false,
        // The gateway is trusted here; validating every frame's UTF-8 would be client CPU the server is not measured by.
        skipUTF8Validation: true,
        ...(localAddress ? { localAddress } : {}),
        // A retry lets the kernel pick the port (the first attempt's may linger in TIME_WAIT); retries are few.
        ...(localPort && attempt === 0 ? { localPort: localPort + i } : {}),
      } as WebSocket.ClientOptions);
      let done = false;
      const finish = (why?: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (why !== undefined) ws.terminate();
        resolve(why);
      };
      const timer = setTimeout(() => finish("no subscribed within 60 s"), 60_000);
      ws.on("message", (data) => {
        const text = data.toString();
        if (text.includes('"type":"welcome"')) ws.send('{"type":"subscribe","room":"all","requestId":"s"}');
        else if (text.includes('"type":"error"')) finish(text.slice(0, 160));
        else if (text.includes('"type":"subscribed"')) {
          sockets.push(ws);
          ws.removeAllListeners("message");
          ws.removeAllListeners("close");
          ws.removeAllListeners("error");
          ws.on("message", onMessage);
          ws.on("close", onClose);
          ws.on("error", () => undefined);
          finish();
        }
      });
      ws.on("unexpected-response", (_req, res) => finish(`upgrade answered ${res.statusCode}`));
      ws.on("error", (error) => finish(error.message));
      ws.on("close", (code) => finish(`closed ${code} before subscribed`));
    });
  }
  await Promise.all(
    Array.from({ length: Math.min(inFlight, count) }, async () => {
      while (next < count) {
        if (Date.now() > deadlineAt) {
          reason("connect deadline reached (not attempted)");
          failed += count - next;
          next = count;
          break;
        }
        await one(next++);
      }
    }),
  );
  clearInterval(progress);
  process.send!({
    type: "connected",
    ms: now() - t0,
    failed,
    retried,
    open: sockets.length,
    reasons: Object.fromEntries(reasons),
  });
}

process.on("message", (msg: { type: string; t?: number; file?: string } & Partial<Start>) => {
  if (msg.type.startsWith("profile-")) void handleProfileMessage(msg);
  else if (msg.type === "start") void start(msg as Start);
  else if (msg.type === "expect") {
    expecting = { t: msg.t!, count: 0, lastAt: 0, latencies: [] };
    expecting.timer = setTimeout(report, 15_000);
    process.send!({ type: "expecting", t: msg.t });
  } else if (msg.type === "closed") {
    process.send!({ type: "closed", closedAfterOpen, codes: Object.fromEntries(closeReasons) });
  } else if (msg.type === "stop") {
    for (const ws of sockets) ws.terminate();
    process.exit(0);
  }
});
