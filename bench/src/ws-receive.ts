import { createHash } from "node:crypto";
import { createServer, type AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import WebSocket, * as wsModule from "ws";

/**
 * What a `ws` client pays to receive one frame, by frame kind and size: a raw TCP server (same process) answers the
 * handshake, then writes chunks of `--batch` identical frames (as a coalescing server does under load) and the client
 * scans each for the bench stamp, as the bench's subscribers do. Reports CPU (both sides, one process) and wall time
 * per frame. The kinds are the frames the fan-out workload carries: the floor's 100-byte payload, an ArqonBus JSON
 * `message` frame around the same payload, and binary frames of ArqonBus protobuf's size; and text frames of 125 and
 * 126 bytes, either side of the point where a frame's length moves from the 7-bit field to the 16-bit extension.
 *
 *   npm run ws-receive -w @arqon/bench -- [--frames 400000] [--batch 26] [--repeat 3]
 */
const { values: args } = parseArgs({
  options: {
    frames: { type: "string", default: "400000" },
    batch: { type: "string", default: "26" },
    repeat: { type: "string", default: "3" },
  },
});
const batch = Number(args.batch);
const chunks = Math.ceil(Number(args.frames) / batch);
const total = chunks * batch;

interface WsSender {
  frame(data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[];
}
const Sender = (wsModule as unknown as { Sender: WsSender }).Sender;

const payload = `{"ts":1796357268969.123,"seq":1,"pad":"${"x".repeat(57)}"}`;
const kinds: Array<{ name: string; data: Buffer; binary: boolean }> = [
  { name: "floor text (payload only)", data: Buffer.from(payload), binary: false },
  {
    name: "ArqonBus JSON message",
    data: Buffer.from(
      `{"type":"message","id":"2htTHL8m-1","room":"fan","payload":${payload},"headers":{"x-timestamp":"1796357268969",` +
        `"x-twist-id":"main"},"offset":1,"epoch":"c9db715b86a66b75","timestamp":1796357268969,"sender":"user-0"}`,
    ),
    binary: false,
  },
  // The largest frame whose length fits the 7-bit field, and one byte more (16-bit extended length from here on).
  { name: "text, 125 bytes", data: Buffer.from(`{"ts":1796357268969.123,"seq":1,"pad":"${"x".repeat(84)}"}`), binary: false },
  { name: "text, 126 bytes", data: Buffer.from(`{"ts":1796357268969.123,"seq":1,"pad":"${"x".repeat(85)}"}`), binary: false },
  { name: "text, JSON message size", data: Buffer.from(`{"ts":1796357268969.123,"seq":1,"pad":"${"x".repeat(254)}"}`), binary: false },
  { name: "binary, protobuf size", data: Buffer.alloc(200, 120), binary: true },
];

async function measure(data: Buffer, binary: boolean): Promise<{ cpu: number; wall: number }> {
  const parts = Sender.frame(data, { fin: true, opcode: binary ? 2 : 1, mask: false, readOnly: true, rsv1: false });
  const chunk = Buffer.concat(new Array<Buffer>(batch).fill(Buffer.concat(parts)));
  const server = createServer((socket) => {
    socket.once("data", (req) => {
      const key = /sec-websocket-key: *(\S+)/i.exec(req.toString("latin1"))?.[1] ?? "";
      const accept = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      let sent = 0;
      const pump = (): void => {
        while (sent < chunks) {
          sent++;
          if (!socket.write(chunk)) {
            socket.once("drain", pump);
            return;
          }
        }
      };
      setTimeout(pump, 20);
    });
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let got = 0;
  let found = 0;
  await new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
    ws.on("message", (frame: Buffer) => {
      if (frame.indexOf('"ts":') >= 0) found++;
      if (++got === total) {
        ws.terminate();
        resolve();
      }
    });
    ws.on("error", reject);
  });
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!binary && found !== total) throw new Error(`stamp found in ${found} of ${total} frames`);
  return { cpu: (cpu.user + cpu.system) / total, wall: (wall * 1000) / total };
}

console.log(`${total} frames per kind, ${batch} per chunk; µs per frame (client and server share this process)`);
for (let r = 0; r < Number(args.repeat); r++) {
  for (const k of kinds) {
    const m = await measure(k.data, k.binary);
    console.log(`  ${k.name.padEnd(26)} ${String(k.data.length).padStart(4)} B   CPU ${m.cpu.toFixed(3)}   wall ${m.wall.toFixed(3)}`);
  }
}
