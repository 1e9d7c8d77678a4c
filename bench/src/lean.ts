import type { Duplex } from "node:stream";
import type WebSocket from "ws";
import { extractTs } from "./payload.js";
import type { ClientHooks } from "./systems/types.js";

/** A client's pong: FIN + opcode 0xA, masked (clients must mask) with a zero key, no payload (these servers ping empty). */
const PONG = Buffer.from([0x8a, 0x80, 0, 0, 0, 0]);

/**
 * Takes a connected `ws` client's socket over: the library's reader is detached and each chunk is walked frame by
 * frame (server frames are unmasked), reporting the stamp of every data frame and answering pings. What it skips is
 * what a subscriber normally pays per frame beyond the bytes: the library's parser state machine, a Buffer per
 * message, UTF-8 validation, an event per message. The same reader serves every system that supports lean mode.
 */
export function readLean(ws: WebSocket, hooks: ClientHooks): void {
  const socket = (ws as unknown as { _socket: Duplex })._socket;
  socket.removeAllListeners("data");
  let rest: Buffer | undefined;
  socket.on("data", (chunk: Buffer) => {
    const buf = rest ? Buffer.concat([rest, chunk]) : chunk;
    const len = buf.length;
    let at = 0;
    while (len - at >= 2) {
      const opcode = buf[at]! & 0x0f;
      let size = buf[at + 1]! & 0x7f;
      let header = 2;
      if (size === 126) {
        if (len - at < 4) break;
        size = buf.readUInt16BE(at + 2);
        header = 4;
      } else if (size === 127) {
        if (len - at < 10) break;
        size = Number(buf.readBigUInt64BE(at + 2));
        header = 10;
      }
      const start = at + header;
      const end = start + size;
      if (end > len) break;
      if (opcode === 1 || opcode === 2) {
        const ts = extractTs(buf, start, end);
        if (ts >= 0) hooks.onTs(ts);
      } else if (opcode === 9) {
        socket.write(PONG);
      }
      at = end;
    }
    rest = at < len ? buf.subarray(at) : undefined;
  });
}
