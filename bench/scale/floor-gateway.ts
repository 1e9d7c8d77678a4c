/**
 * The floor of the scale benchmark (run.ts --system floor): a bare `ws` server process speaking just enough of the
 * ArqonBus JSON protocol for clients.ts (welcome, subscribe → subscribed, message), with no auth, no NATS and no
 * per-connection state beyond the socket. A broadcast is framed once and written to every socket with one plain write;
 * run.ts sends the publish to every floor process at once (there is no bus between them), so its figure is what the
 * kernel and the `ws` clients cost on this machine for the same number of deliveries.
 *
 * `ARQON_SCALE_FRAME=arqon` (run.ts --system floor-arqon): each broadcast goes out as ArqonBus's own message frame
 * instead, encoded by @arqon/core with the fields a server publish carries (id, room, offset, timestamp, the default
 * headers; protocol 1.1 leaves out the epoch and those headers, as the gateway does for a subscriber told the epoch),
 * so the difference to ArqonBus is the gateway's work, not the frame's bytes or the clients' reading of them.
 * IPC: the same as gateway.ts (ready, publish → published, rss, profile-*, stop).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import { encodeJson } from "@arqon/core";
import { arqonMessages, frameOnce, LIVE_11 } from "../src/systems/floor.js";
import { handleProfileMessage } from "./profiler.js";

function frameText(text: string): Buffer {
  return frameOnce(Buffer.from(text));
}

/** The broadcast's frame text: the floor's own few bytes, or ArqonBus's message frame (`ARQON_SCALE_FRAME=arqon`). */
function broadcastText(): (payload: string) => string {
  if (process.env.ARQON_SCALE_FRAME !== "arqon") return (payload) => `{"type":"message","room":"all","payload":${payload}}`;
  const options = process.env.ARQON_SCALE_PROTOCOL === "1.0" ? undefined : LIVE_11;
  const message = arqonMessages(); // a server publish: no sender
  return (payload) => encodeJson(message("all", Buffer.from(payload)), options);
}

const broadcast = broadcastText();
const WELCOME = frameText('{"type":"welcome"}');
const SUBSCRIBED = frameText('{"type":"subscribed","room":"all","requestId":"s"}');
const sockets = new Set<Duplex>();
const http = createServer();
const wss = new WebSocketServer({ server: http, path: "/ws", perMessageDeflate: false, clientTracking: false, maxPayload: 1 << 16 });
wss.on("connection", (ws) => {
  const raw = (ws as unknown as { _socket: Duplex })._socket;
  raw.write(WELCOME);
  ws.on("message", (data: Buffer) => {
    if (data.includes('"subscribe"')) {
      sockets.add(raw);
      raw.write(SUBSCRIBED);
    }
  });
  ws.on("close", () => sockets.delete(raw));
  ws.on("error", () => undefined);
});
await new Promise<void>((resolve) => http.listen(Number(process.env.ARQON_PORT ?? 0), "127.0.0.1", resolve));
const gc = (globalThis as { gc?: () => void }).gc;

process.on("message", (msg: { type: string; t?: number; at?: number; file?: string }) => {
  if (msg.type.startsWith("profile-")) void handleProfileMessage(msg);
  else if (msg.type === "publish") {
    const framed = frameText(broadcast(`{"t":${msg.t},"at":${msg.at}}`));
    for (const raw of sockets) if (raw.writable) raw.write(framed);
    process.send!({ type: "published" });
  } else if (msg.type === "rss") {
    gc?.();
    gc?.();
    const m = process.memoryUsage();
    process.send!({ type: "rss", rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, connections: sockets.size });
  } else if (msg.type === "stop") {
    http.close();
    for (const raw of sockets) raw.destroy();
    process.exit(0);
  }
});
process.send!({ type: "ready", port: (http.address() as AddressInfo).port });
