import type { Duplex } from "node:stream";
import WebSocket from "ws";
import * as wsModule from "ws";
import { PROTOCOL_VERSION, encodeJson, encodeJsonParts, encodeProto, type EncodeOptions, type Envelope, type Frame, type ProtocolVersion, type RoomKey } from "@arqon/core";
import type { AuthContext } from "./auth.js";
import { AbuseCounter, TokenBucket } from "./limits.js";

export type WireCodec = "json" | "protobuf";

/**
 * One outbound WebSocket frame, framed once: `wire` is the RFC 6455 frame (unmasked, FIN set, never compressed) of
 * `data`, header and payload in one buffer, so the same buffer goes to any number of sockets and a socket with one
 * frame pending costs one plain write.
 */
export interface OutFrame {
  readonly wire: Buffer;
  readonly data: Buffer;
  readonly binary: boolean;
  readonly size: number;
}

interface WsSender {
  frame(data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[];
}
// ws exports its frame encoder (not in @types/ws); the ESM wrapper has it as a named export only.
const Sender = (wsModule as unknown as { Sender: WsSender }).Sender;
const FRAME_OPTIONS_TEXT = { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false };
const FRAME_OPTIONS_BINARY = { fin: true, opcode: 2, mask: false, readOnly: true, rsv1: false };

/** Up to this many queued bytes are copied into one buffer for a single write; more go out as a corked writev. */
const COALESCE_COPY_LIMIT = 16 * 1024;

/** A server ping: FIN + opcode 0x9, unmasked, empty payload. The same two bytes for every connection. */
const PING_FRAME = Buffer.from([0x89, 0x00]);

export function frameBytes(data: Buffer, binary: boolean): OutFrame {
  const parts = Sender.frame(data, binary ? FRAME_OPTIONS_BINARY : FRAME_OPTIONS_TEXT);
  const header = parts[0]!;
  const size = header.length + data.length;
  const wire = Buffer.allocUnsafe(size);
  header.copy(wire, 0);
  data.copy(wire, header.length);
  return { wire, data, binary, size };
}

/** Protocol 1.1 encode options, with and without the epoch of a message (shared, never changed). */
export const ENCODE_11: EncodeOptions = Object.freeze({ protocol: "1.1" });
export const ENCODE_11_NO_EPOCH: EncodeOptions = Object.freeze({ protocol: "1.1", epoch: false });

/**
 * A JSON frame written straight into its WebSocket frame: one buffer holds the frame header, the JSON text before the
 * payload, the payload's own bytes (copied, never decoded to text and encoded again) and the text after it.
 */
export function jsonOut(frame: Frame, options?: EncodeOptions): OutFrame {
  let head: string;
  let payload: Uint8Array | undefined;
  let tail = "";
  if (frame.payload === undefined) head = encodeJson(frame, options); // acks, errors, replies: one string
  else ({ head, payload, tail } = encodeJsonParts(frame, options));
  const headBytes = Buffer.byteLength(head, "utf8");
  const tailBytes = tail.length === 0 ? 0 : Buffer.byteLength(tail, "utf8");
  const length = headBytes + (payload === undefined ? 0 : payload.length) + tailBytes;
  const headerBytes = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const wire = Buffer.allocUnsafe(headerBytes + length);
  // RFC 6455: FIN + text opcode, then the unmasked payload length in 7, 7+16 or 7+64 bits.
  wire[0] = 0x81;
  if (headerBytes === 2) wire[1] = length;
  else if (headerBytes === 4) {
    wire[1] = 126;
    wire.writeUInt16BE(length, 2);
  } else {
    wire[1] = 127;
    wire.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    wire.writeUInt32BE(length >>> 0, 6);
  }
  let at = headerBytes + wire.write(head, headerBytes, "utf8");
  if (payload !== undefined) {
    wire.set(payload, at);
    at += payload.length;
    if (tailBytes > 0) wire.write(tail, at, "utf8");
  }
  return new JsonWire(wire, headerBytes);
}

/**
 * A JSON frame's wire bytes; `data` (the frame without its header: permessage-deflate and the fallback transports
 * read it) is cut on first use, as most frames only ever go out as `wire`.
 */
class JsonWire implements OutFrame {
  private cut: Buffer | undefined = undefined;
  readonly binary = false;

  constructor(
    readonly wire: Buffer,
    private readonly headerBytes: number,
  ) {}

  get size(): number {
    return this.wire.length;
  }

  get data(): Buffer {
    return (this.cut ??= this.wire.subarray(this.headerBytes));
  }
}

export function encodeOut(frame: Frame, codec: WireCodec, options?: EncodeOptions): OutFrame {
  if (codec === "json") return jsonOut(frame, options);
  const bytes = encodeProto(frame, options);
  return frameBytes(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), true);
}

/**
 * How a message goes to one subscription of a connection: protocol 1.0 as it is; 1.1 without the default headers, and
 * with the epoch only when the subscription was not told it yet (which it then is).
 */
export function messageOptions(sub: Subscription, epoch: string | undefined): EncodeOptions | undefined {
  if (sub.conn.protocol !== "1.1") {
    if (epoch) sub.toldEpoch = epoch;
    return undefined;
  }
  if (!epoch || epoch === sub.toldEpoch) return ENCODE_11_NO_EPOCH;
  sub.toldEpoch = epoch;
  return ENCODE_11;
}

/** A connection's subscription to one room. While `buffer` is set (subscribe in progress) live frames queue there. */
export interface Subscription {
  readonly conn: Connection;
  readonly key: RoomKey;
  readonly room: string;
  /** Whether the connection may see the room's presence. */
  seesPresence: boolean;
  buffer: Envelope[] | null;
  /** Whether the connection announced itself in the room's presence set. */
  inPresence: boolean;
  readonly joinedAt: number;
  closed: boolean;
  /**
   * Newest message offset written to this subscriber (with its `epoch`): a message at or below it in the same epoch
   * was already sent (by recovery, or as the subscribe's snapshot position) and is dropped, which closes the seam
   * between recovery and live delivery even when a publish races with the subscribe.
   */
  lastOffset: number;
  epoch: string | undefined;
  /**
   * The epoch this subscriber was last told: by its `subscribed` reply, or by the last message written to it that
   * carried one. Protocol 1.1 writes a message's epoch only when it differs from this.
   */
  toldEpoch: string | undefined;
  /** Opted in to delta messages (`subscribe` with `delta: true`). */
  delta: boolean;
  /** Offset of the message whose full payload this subscriber last received live (its delta base); 0 = none. */
  deltaBase: number;
}

/**
 * A connection's wildcard subscription (docs/protocol.md, "Wildcard subscriptions"): every room of its tenant whose
 * name `pattern` matches (the capabilities' syntax), delivered with the concrete room name. No presence, no state,
 * no recovery of its own.
 */
export interface PatternSubscription {
  readonly conn: Connection;
  readonly pattern: string;
  /** The escaped tenant token its rooms' keys start with. */
  readonly tenantToken: string;
  /** Per concrete room, whether the token's `sub` capability covers it (for the auth it was computed with). */
  allowed: Map<RoomKey, boolean>;
  /** The auth `allowed` was computed for: a refresh with other caps starts it over. */
  allowedFor: unknown;
  /**
   * Per concrete room, the newest offset delivered (with its epoch): the bus may hand an envelope twice while it
   * switches a node to the tenant-wide subscription.
   */
  readonly seen: Map<RoomKey, { epoch: string | undefined; offset: number }>;
  closed: boolean;
}

/**
 * Something the server does to a connection in turn with its inbound frames (a server-side subscribe): it runs when
 * the frames queued before it are handled, and handles its own errors.
 */
export type ServerAction = () => void | Promise<void>;

/**
 * A socket that writes a flush's frames together (a fallback stream, fallback.ts): it stands in for a WebSocket and is
 * handed the whole batch instead of one `send` per frame.
 */
export interface BatchSocket {
  sendBatch(frames: readonly OutFrame[]): void;
}

/** What a connection needs from the component that writes its frames. */
export interface OutboundScheduler {
  schedule(conn: Connection): void;
  slowConsumer(conn: Connection): void;
}

/**
 * One client connection: who it is (auth), how it talks (codec), what it listens to (subscriptions), and its outbound
 * queue. Frames are queued as pre-framed buffers and written once per event-loop turn.
 */
export class Connection {
  readonly subscriptions = new Map<RoomKey, Subscription>();
  /** Wildcard subscriptions, by pattern (counted with `subscriptions` against `limits.maxSubscriptions`). */
  readonly patterns = new Map<string, PatternSubscription>();
  readonly bucket: TokenBucket;
  readonly abuse: AbuseCounter;
  /**
   * The first outbound frame waiting for the next flush, and the ones after it. Most flushes carry one frame (a
   * broadcast gives every socket one per turn): holding it in a field spares each such socket an array backing store
   * per turn, which `length = 0` drops again (at 100,000 connections that was most of a broadcast's young garbage).
   */
  private first: OutFrame | undefined = undefined;
  private readonly rest: OutFrame[] = [];
  pendingBytes = 0;
  /** Bytes the socket still held at the last flush (its write backlog); refreshed by `flush`. */
  private socketBacklog = 0;
  scheduled = false;
  /** Set once the connection is closing: nothing more is queued or written. */
  closing = false;
  awaitingPong = false;
  pingSentAt = 0;
  lastPingAt: number;
  /**
   * Inbound frames waiting for the previous one to finish (publishes of one client are handled in order), and the
   * server's own actions on the connection queued among them (`Gateway.inTurn`).
   */
  readonly inbox: Array<Frame | ServerAction> = [];
  processing = false;
  readonly raw: Duplex | undefined;
  /** Set when the socket is a fallback stream (it takes a flush's frames in one call). */
  readonly batch: BatchSocket | undefined;
  readonly deflate: boolean;
  readonly connectedAt = Date.now();
  /** The wire protocol version in force: from `?protocol=` at the upgrade, changed by `hello` (what `welcome` says). */
  protocol: ProtocolVersion = PROTOCOL_VERSION;

  constructor(
    readonly id: string,
    readonly ws: WebSocket,
    public auth: AuthContext,
    readonly codec: WireCodec,
    readonly ip: string,
    readonly maxPendingBytes: number,
    private readonly scheduler: OutboundScheduler,
    limits: { publishRatePerSecond: number; publishBurst: number; abuseThreshold: number; abuseWindowMs: number },
  ) {
    this.bucket = new TokenBucket(limits.publishRatePerSecond, limits.publishBurst);
    this.abuse = new AbuseCounter(limits.abuseThreshold, limits.abuseWindowMs);
    this.lastPingAt = this.connectedAt;
    this.raw = (ws as unknown as { _socket?: Duplex })._socket;
    this.deflate = ws.extensions.includes("permessage-deflate");
    this.batch = typeof (ws as unknown as Partial<BatchSocket>).sendBatch === "function" ? (ws as unknown as BatchSocket) : undefined;
  }

  get tenant(): string {
    return this.auth.tenant;
  }

  /** Queues a pre-framed frame; closes the connection as a slow consumer when its backlog passes the cap. */
  enqueue(out: OutFrame): void {
    if (this.closing) return;
    if (this.first === undefined) this.first = out;
    else this.rest.push(out);
    this.pendingBytes += out.size;
    // The socket's own backlog is read once per flush, not per message (it was the gateway's largest fan-out cost);
    // only when the estimate passes the cap is it read again, so a backlog that drained since is not held against it.
    if (this.pendingBytes + this.socketBacklog > this.maxPendingBytes) {
      this.socketBacklog = this.ws.bufferedAmount;
      if (this.pendingBytes + this.socketBacklog > this.maxPendingBytes) {
        this.scheduler.slowConsumer(this);
        return;
      }
    }
    if (!this.scheduled) {
      this.scheduled = true;
      this.scheduler.schedule(this);
    }
  }

  /**
   * Encodes a frame for this connection alone (replies, errors) and queues it, in the connection's protocol version.
   * A message frame for a subscription goes through `sendMessage` instead (its epoch depends on the subscription).
   */
  send(frame: Frame): void {
    if (this.closing) return;
    this.enqueue(encodeOut(frame, this.codec, this.protocol === "1.1" ? ENCODE_11 : undefined));
  }

  /** Encodes a message frame for one of this connection's subscriptions (recovery, held frames) and queues it. */
  sendMessage(sub: Subscription, frame: Frame): void {
    if (this.closing) return;
    this.enqueue(encodeOut(frame, this.codec, messageOptions(sub, frame.epoch)));
  }

  /** Writes a frame at once, ahead of anything queued (the welcome, while the upgrade still holds the socket corked). */
  sendNow(frame: Frame): void {
    if (this.closing || this.ws.readyState !== WebSocket.OPEN) return;
    const out = encodeOut(frame, this.codec);
    const raw = this.raw;
    if (!this.deflate && raw && raw.writable) raw.write(out.wire);
    else this.ws.send(out.data, { binary: out.binary, compress: false });
  }

  /** Writes everything queued in one go: one write, or one corked write of all frames (ws.send with compression). */
  flush(deflateThreshold: number): void {
    this.scheduled = false;
    const first = this.first;
    if (first === undefined) return;
    this.first = undefined;
    const rest = this.rest;
    const total = this.pendingBytes;
    this.pendingBytes = 0;
    // The array of further frames is kept and emptied after the writes. Nothing can be queued during them: a socket
    // reports write errors asynchronously.
    try {
      if (this.closing || this.ws.readyState !== WebSocket.OPEN) return;
      if (this.batch !== undefined) return this.batch.sendBatch([first, ...rest]);
      const raw = this.raw;
      if (!this.deflate && raw && raw.writable) {
        if (rest.length === 0) {
          raw.write(first.wire);
        } else if (total <= COALESCE_COPY_LIMIT) {
          // Several small frames: one contiguous buffer and one plain write (Node's corked writev path costs more
          // per call than copying a few hundred bytes).
          const buf = Buffer.allocUnsafe(total);
          first.wire.copy(buf, 0);
          let at = first.wire.length;
          for (let i = 0; i < rest.length; i++) {
            const w = rest[i]!.wire;
            w.copy(buf, at);
            at += w.length;
          }
          raw.write(buf);
        } else {
          raw.cork();
          raw.write(first.wire);
          for (let i = 0; i < rest.length; i++) raw.write(rest[i]!.wire);
          raw.uncork();
        }
        this.socketBacklog = raw.writableLength;
        return;
      }
      this.ws.send(first.data, { binary: first.binary, compress: first.data.length >= deflateThreshold });
      for (let i = 0; i < rest.length; i++) {
        const f = rest[i]!;
        this.ws.send(f.data, { binary: f.binary, compress: f.data.length >= deflateThreshold });
      }
    } finally {
      if (rest.length > 0) rest.length = 0;
    }
  }

  /** Sends a WebSocket ping: two constant bytes on the raw socket (ws.ping when ws writes this connection itself). */
  ping(): void {
    const raw = this.raw;
    if (!this.deflate && raw && raw.writable) raw.write(PING_FRAME);
    else this.ws.ping();
  }

  /** Stops all output and starts the closing handshake; `terminateAfterMs` cuts the socket if it does not finish. */
  close(code: number, reason: string, terminateAfterMs: number): void {
    if (this.closing) return;
    this.closing = true;
    this.first = undefined;
    this.rest.length = 0;
    this.pendingBytes = 0;
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.terminate();
      return;
    }
    const timer = setTimeout(terminateSocket, terminateAfterMs, this.ws);
    timer.unref();
    this.ws.once("close", () => clearTimeout(timer));
  }
}

function terminateSocket(ws: WebSocket): void {
  ws.terminate();
}
