import type { Frame, ProtocolVersion } from "../frame/types.js";
import type { FrameError } from "../errors.js";

/** Limits and checks applied while decoding one frame; every field has a default. */
export interface DecodeOptions {
  /** Frames larger than this are refused with ARQ_FRAME_TOO_LARGE before parsing. @default 1048576 */
  maxBytes?: number;
  /** JSON nesting deeper than this is refused with ARQ_FRAME_TOO_DEEP. @default 32 */
  maxDepth?: number;
  /**
   * "client": the frame came from a client, so only client frame types are accepted (else ARQ_FRAME_UNEXPECTED) and
   * room names are checked. "any": every frame type is accepted (SDKs decoding server frames, tests).
   * @default "client"
   */
  from?: "client" | "any";
  /**
   * The valid UTF-8 bytes the JSON text was decoded from (a WebSocket text message, which `ws` checks). When given,
   * a client frame's payload that needs no re-serialising is a view of these bytes instead of a copy; the caller must
   * not reuse them.
   */
  source?: Uint8Array;
}

/** How a frame is written for one connection; every field has a default. */
export interface EncodeOptions {
  /**
   * The connection's protocol version. "1.1" writes `message` frames, and the messages of a `messages` list, in their
   * 1.1 form: no `x-timestamp` header, no `x-twist-id` header naming the default timeline, and in JSON the compact
   * message object (docs/protocol.md, "Protocol 1.1"). Other frames are the same in both versions.
   * @default "1.0"
   */
  protocol?: ProtocolVersion;
  /**
   * Protocol 1.1, a `message` frame: whether to write its `epoch` (the subscription was not told that epoch yet).
   * The messages of a `messages` list carry theirs only when it differs from the list frame's `epoch`. Protocol 1.0
   * always writes it.
   * @default true
   */
  epoch?: boolean;
}

/** Decoding never throws: a fault comes back with its code and, when it could be read, the request id. */
export type DecodeResult =
  | {
      /** Decoding succeeded. */
      ok: true;
      /** The decoded, canonical frame. */
      frame: Frame;
    }
  | {
      /** Decoding failed. */
      ok: false;
      /** Why, with its code (`ARQ_FRAME_*`, `ARQ_ROOM_INVALID`, ...) and, when known, `detail.field`. */
      error: FrameError;
      /** The frame's `requestId`, when it could be read, so the `error` reply can carry it. */
      requestId?: string;
    };

/** A wire format. Text WebSocket frames are JSON, binary frames are protobuf. */
export interface Codec {
  /** Which wire format this is. */
  readonly name: "json" | "protobuf";
  /** Encodes a frame: JSON text for "json", protobuf bytes for "protobuf" (1.0 unless `options.protocol` says). */
  encode(frame: Frame, options?: EncodeOptions): string | Uint8Array;
  /**
   * Decodes one WebSocket message. Never throws: faults, including input of the other kind (bytes given to the JSON
   * codec, text to the protobuf one), come back as `{ ok: false }` with a {@link FrameError}.
   */
  decode(data: string | Uint8Array, options?: DecodeOptions): DecodeResult;
}
