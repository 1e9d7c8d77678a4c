import { ArqonError, ErrorCode } from "../errors.js";
import type { Frame, PayloadFormat } from "../frame/types.js";
import type { DeltaEncoding } from "./encode.js";
import { fossilApply } from "./fossil-apply.js";

/** Largest payload `applyDelta` rebuilds unless told otherwise. @default 16 MiB */
export const DEFAULT_MAX_DELTA_OUTPUT_BYTES = 16 * 1024 * 1024;

/**
 * Rebuilds the payload a delta was made from. A corrupt delta, a wrong base (the fossil checksum does not match) or an
 * output above `maxBytes` throws `ArqonError` ARQ_FRAME_MALFORMED
 * (detail `{ field: "payload", delta: true }`).
 */
export function applyDelta(prev: Uint8Array, delta: Uint8Array, maxBytes = DEFAULT_MAX_DELTA_OUTPUT_BYTES): Uint8Array {
  try {
    return fossilApply(prev, delta, maxBytes);
  } catch (cause) {
    throw new ArqonError(ErrorCode.FRAME_MALFORMED, "delta could not be applied to the previous payload", {
      cause,
      detail: { field: "payload", delta: true },
    });
  }
}

/**
 * One delta subscriber's place in one room: what it was sent last. The delta goes out only when the subscriber got
 * exactly the delta's base; a fresh, resubscribed or recovered subscriber (`reset()`), or one that skipped a message
 * (echo off, a filtered message), gets the full payload.
 */
export class DeltaCursor {
  #last: number | undefined;

  /** Chooses what to send for `encoding` and records it as sent. */
  next(encoding: DeltaEncoding): {
    /** What to send as the message's payload: the delta, or the full payload. */
    payload: Uint8Array;
    /** Whether `payload` is the delta (send it with `delta: true` and `payloadFormat: "binary"`). */
    delta: boolean;
  } {
    const useDelta = encoding.delta !== undefined && encoding.baseSeq !== undefined && this.#last === encoding.baseSeq;
    this.#last = encoding.seq;
    return useDelta ? { payload: encoding.delta!, delta: true } : { payload: encoding.full, delta: false };
  }

  /** The next message goes out full (call on subscribe, resubscribe and after a recovery replay). */
  reset(): void {
    this.#last = undefined;
  }
}

/**
 * The SDK side: keeps the last payload received per room and turns delta messages back into full ones. A message
 * without `delta` is returned as is and becomes the room's base.
 */
export class DeltaDecoder {
  readonly #bases = new Map<string, { payload: Uint8Array; format: PayloadFormat }>();
  readonly #maxBytes: number;

  constructor(options: { maxBytes?: number } = {}) {
    this.#maxBytes = options.maxBytes ?? DEFAULT_MAX_DELTA_OUTPUT_BYTES;
  }

  /**
   * The message with its full payload: for a delta, `payload` rebuilt against the room's previous payload,
   * `delta` removed and `payloadFormat` that of the base. Throws ARQ_FRAME_MALFORMED when there is no base or the
   * delta does not fit it (resubscribe with `since` to recover).
   */
  apply(room: string, frame: Frame): Frame {
    const payload = frame.payload ?? new Uint8Array(0);
    if (!frame.delta) {
      this.#bases.set(room, { payload, format: frame.payloadFormat ?? "json" });
      return frame;
    }
    const base = this.#bases.get(room);
    if (base === undefined) {
      throw new ArqonError(ErrorCode.FRAME_MALFORMED, `delta message in "${room}" without a previous payload`, {
        detail: { field: "payload", delta: true },
      });
    }
    const full = applyDelta(base.payload, payload, this.#maxBytes);
    this.#bases.set(room, { payload: full, format: base.format });
    const out: Frame = { ...frame, payload: full };
    delete out.delta;
    if (base.format === "binary") out.payloadFormat = "binary";
    else delete out.payloadFormat;
    return out;
  }

  /** Forgets one room's base (or all): call on resubscribe, since the server then starts with a full payload. */
  reset(room?: string): void {
    if (room === undefined) this.#bases.clear();
    else this.#bases.delete(room);
  }
}
