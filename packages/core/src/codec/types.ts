import type { Frame } from "../frame/types.js";
import type { FrameError } from "../errors.js";

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
}

/** Decoding never throws: a fault comes back with its code and, when it could be read, the request id. */
export type DecodeResult = { ok: true; frame: Frame } | { ok: false; error: FrameError; requestId?: string };

/** A wire format. Text WebSocket frames are JSON, binary frames are protobuf. */
export interface Codec {
  readonly name: "json" | "protobuf";
  encode(frame: Frame): string | Uint8Array;
  decode(data: string | Uint8Array, options?: DecodeOptions): DecodeResult;
}
