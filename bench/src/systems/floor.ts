import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import WebSocket, * as wsModule from "ws";
import type { Frame } from "@arqon/core";
import { readLean } from "../lean.js";
import { extractTs } from "../payload.js";
import type { ClientFactory, ClientHooks, ClientOptions, RunningServer, SystemAdapter } from "./types.js";

/**
 * The floor: a bare `ws` server with the least work this runtime allows. A published message is framed once (one
 * buffer: header + payload) and every recipient gets a reference to it; each socket gets at most one corked write per
 * event-loop turn. Protocol (text frames): `S<room>` joins (answered `S`), `P<room>\n<payload>` publishes to the room's
 * other members, who receive exactly `<payload>`.
 */

interface WsSender {
  frame(data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[];
}
const Sender = (wsModule as unknown as { Sender: WsSender }).Sender;
const { WebSocketServer } = wsModule;
const TEXT = { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false };
const BINARY = { ...TEXT, opcode: 2 };

/** One unmasked text (or binary) frame, header + payload, in one buffer; also used by bench/scale's floor. */
export function frameOnce(data: Buffer, binary = false): Buffer {
  const parts = Sender.frame(data, binary ? BINARY : TEXT);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

interface FloorConn {
  raw: Duplex;
  pending: Buffer[];
  queued: boolean;
  rooms: string[];
}

/** Turns a published payload into the bytes the recipients get, and says how they are framed (text or binary). */
interface Wrapper {
  binary: boolean;
  wrap(room: string, payload: Buffer): Buffer;
}

async function startServer(): Promise<RunningServer> {
  return startFloor(false);
}

/**
 * ArqonBus's live message frames, one per call, with the fields and sizes the gateway gives them: a message id of the
 * gateway's shape, the room, the next offset of one epoch, the receive time as `timestamp` and `x-timestamp`, the
 * default twist id and, when given, the sender (a client publish has one, a server publish none). Also used by
 * bench/scale's `floor-arqon`.
 */
export function arqonMessages(sender?: string): (room: string, payload: Uint8Array) => Frame {
  const epoch = randomBytes(8).toString("hex");
  const prefix = randomBytes(6).toString("base64url");
  let offset = 0;
  return (room, payload) => {
    offset++;
    const now = Date.now();
    const frame: Frame = {
      type: "message",
      id: `${prefix}-${offset}`,
      room,
      payload,
      headers: { "x-timestamp": String(now), "x-twist-id": "main" },
      offset,
      epoch,
      timestamp: now,
    };
    if (sender !== undefined) frame.sender = sender;
    return frame;
  };
}

/** Protocol 1.1 encode options of the live frame a subscriber gets once it was told the room's epoch. */
export const LIVE_11 = { protocol: "1.1", epoch: false } as const;

/**
 * A wrapper that gives the floor's recipients ArqonBus's own message frame (same fields and sizes as the gateway's
 * live delivery, encoded by @arqon/core once per message), so the floor's loop can be measured with ArqonBus's frame
 * shape: what is left between it and ArqonBus is the gateway's own work, not the bytes or the client's parsing.
 */
async function arqonFrameWrapper(codec: "json" | "protobuf", protocol: "1.0" | "1.1" = "1.0"): Promise<Wrapper> {
  const { encodeJson, encodeProto } = await import("@arqon/core");
  // Protocol 1.1: the compact JSON message object (no default headers, no epoch), as the gateway encodes it once per
  // message for every subscriber told the epoch.
  const options = protocol === "1.1" ? LIVE_11 : undefined;
  const message = arqonMessages("user-0");
  return {
    binary: codec === "protobuf",
    wrap(room, payload) {
      const frame = message(room, payload);
      if (codec === "json") return Buffer.from(encodeJson(frame, options), "utf8");
      const bytes = encodeProto(frame, options);
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
  };
}

/**
 * `split`: keep each frame as two buffers (header, payload) and write both, as a gateway that frames with
 * `Sender.frame` without merging does; the `floor-split` system exists to measure what that costs. `wrapper`: what
 * the recipients get instead of the bare payload (the `floor-arqon-*` systems).
 */
async function startFloor(split: boolean, wrapper?: Wrapper): Promise<RunningServer> {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false, clientTracking: false, maxPayload: 1 << 20 });
  const rooms = new Map<string, FloorConn[]>();
  let dirty: FloorConn[] = [];
  let spare: FloorConn[] = [];
  let flushScheduled = false;
  const SUB_OK = frameOnce(Buffer.from("S"));

  const flush = (): void => {
    flushScheduled = false;
    const list = dirty;
    dirty = spare;
    for (let i = 0; i < list.length; i++) {
      const c = list[i]!;
      c.queued = false;
      const p = c.pending;
      if (c.raw.writable) {
        if (p.length === 1) c.raw.write(p[0]!);
        else {
          c.raw.cork();
          for (let j = 0; j < p.length; j++) c.raw.write(p[j]!);
          c.raw.uncork();
        }
      }
      p.length = 0;
    }
    list.length = 0;
    spare = list;
  };

  const enqueue = (c: FloorConn, buf: Buffer): void => {
    c.pending.push(buf);
    if (!c.queued) {
      c.queued = true;
      dirty.push(c);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    }
  };

  wss.on("connection", (ws) => {
    const conn: FloorConn = { raw: (ws as unknown as { _socket: Duplex })._socket, pending: [], queued: false, rooms: [] };
    ws.on("message", (data: Buffer) => {
      const op = data[0];
      if (op === 0x50 /* P */) {
        const nl = data.indexOf(10);
        if (nl < 0) return;
        const members = rooms.get(data.toString("latin1", 1, nl));
        if (!members) return;
        if (split) {
          const [header, body] = Sender.frame(data.subarray(nl + 1), TEXT);
          for (let i = 0; i < members.length; i++) {
            const m = members[i]!;
            if (m !== conn) {
              enqueue(m, header!);
              if (body) enqueue(m, body);
            }
          }
          return;
        }
        const payload = data.subarray(nl + 1);
        const framed = wrapper
          ? frameOnce(wrapper.wrap(data.toString("latin1", 1, nl), payload), wrapper.binary)
          : frameOnce(payload);
        for (let i = 0; i < members.length; i++) {
          const m = members[i]!;
          if (m !== conn) enqueue(m, framed);
        }
      } else if (op === 0x53 /* S */) {
        const room = data.toString("latin1", 1);
        let members = rooms.get(room);
        if (!members) rooms.set(room, (members = []));
        members.push(conn);
        conn.rooms.push(room);
        enqueue(conn, SUB_OK);
      }
    });
    ws.on("close", () => {
      for (const room of conn.rooms) {
        const members = rooms.get(room);
        if (!members) continue;
        const i = members.indexOf(conn);
        if (i >= 0) members.splice(i, 1);
        if (members.length === 0) rooms.delete(room);
      }
    });
    ws.on("error", () => undefined);
  });

  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  return {
    port: (http.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        wss.close();
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}

async function createClientFactory(opts: ClientOptions): Promise<ClientFactory> {
  const url = `ws://127.0.0.1:${opts.port}/`;
  return {
    prepare: async () => undefined,
    connect: (_index, hooks) =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { perMessageDeflate: false });
        let waitingSub: (() => void) | undefined;
        ws.on("message", (data: Buffer) => {
          if (data.length === 1 && data[0] === 0x53) {
            const w = waitingSub;
            waitingSub = undefined;
            w?.();
            return;
          }
          const ts = extractTs(data);
          if (ts >= 0) hooks.onTs(ts);
        });
        ws.once("error", reject);
        ws.once("open", () => {
          ws.off("error", reject);
          ws.on("error", () => undefined);
          resolve({
            subscribe: (room) =>
              new Promise<void>((res) => {
                waitingSub = res;
                ws.send("S" + room);
              }),
            publish: (room, payload) => ws.send("P" + room + "\n" + payload),
            close: () => ws.terminate(),
            lean: (h: ClientHooks) => readLean(ws, h),
          });
        });
      }),
  };
}

export const floor: SystemAdapter = {
  id: "floor",
  label: "bare ws floor",
  clientNote: "ws clients",
  startServer,
  createClientFactory,
};

export const floorSplit: SystemAdapter = {
  id: "floor-split",
  label: "bare ws floor, header and payload written as two buffers",
  clientNote: "ws clients",
  startServer: () => startFloor(true),
  createClientFactory,
};

export const floorArqonJson: SystemAdapter = {
  id: "floor-arqon-json",
  label: "bare ws floor carrying ArqonBus's JSON message frame (protocol 1.1)",
  clientNote: "ws clients, ArqonBus's compact JSON message frame (~180 bytes for a 100-byte payload)",
  startServer: async () => startFloor(false, await arqonFrameWrapper("json", "1.1")),
  createClientFactory,
};

export const floorArqonJson10: SystemAdapter = {
  id: "floor-arqon-json-1.0",
  label: "bare ws floor carrying ArqonBus's protocol 1.0 JSON message frame",
  clientNote: "ws clients, ArqonBus's protocol 1.0 JSON message frame (~300 bytes for a 100-byte payload)",
  startServer: async () => startFloor(false, await arqonFrameWrapper("json", "1.0")),
  createClientFactory,
};

export const floorArqonProto: SystemAdapter = {
  id: "floor-arqon-proto",
  label: "bare ws floor carrying ArqonBus's protobuf message frame (protocol 1.1)",
  clientNote: "ws clients, ArqonBus's protocol 1.1 protobuf message frame (~150 bytes for a 100-byte payload)",
  startServer: async () => startFloor(false, await arqonFrameWrapper("protobuf", "1.1")),
  createClientFactory,
};

export const floorArqonProto10: SystemAdapter = {
  id: "floor-arqon-proto-1.0",
  label: "bare ws floor carrying ArqonBus's protocol 1.0 protobuf message frame",
  clientNote: "ws clients, ArqonBus's protocol 1.0 protobuf message frame (~200 bytes for a 100-byte payload)",
  startServer: async () => startFloor(false, await arqonFrameWrapper("protobuf", "1.0")),
  createClientFactory,
};
