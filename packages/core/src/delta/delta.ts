// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- fossil-delta ships no types; the reference brings them into every program that compiles core sources (server, sdk)
/// <reference path="./fossil-delta.d.ts" />
import fossilDelta from "fossil-delta";
import { ArqonError, ErrorCode } from "../errors.js";
import type { Frame, PayloadFormat } from "../frame/types.js";

/** Largest payload `applyDelta` rebuilds unless told otherwise. @default 16 MiB */
export const DEFAULT_MAX_DELTA_OUTPUT_BYTES = 16 * 1024 * 1024;

/**
 * A fossil delta turning `prev` into `next`, or undefined when it would not be smaller than `next` (then send `next`
 * itself). Works on plain Uint8Arrays in browsers and Node alike.
 */
export function createDelta(prev: Uint8Array, next: Uint8Array): Uint8Array | undefined {
  if (next.length === 0) return undefined;
  const delta = fossilDelta.create(prev, next);
  return delta.length < next.length ? Uint8Array.from(delta) : undefined;
}

/**
 * Rebuilds the payload a delta was made from. A corrupt delta, a wrong base (the fossil checksum does not match) or an
 * output above `maxBytes` throws `ArqonError` ARQ_FRAME_MALFORMED
 * (detail `{ field: "payload", delta: true }`).
 */
export function applyDelta(prev: Uint8Array, delta: Uint8Array, maxBytes = DEFAULT_MAX_DELTA_OUTPUT_BYTES): Uint8Array {
  let size: number;
  let out: number[];
  try {
    size = fossilDelta.outputSize(delta);
    if (size > maxBytes) throw new Error(`delta output of ${size} bytes exceeds ${maxBytes}`);
    out = fossilDelta.apply(prev, delta);
  } catch (cause) {
    throw new ArqonError(ErrorCode.FRAME_MALFORMED, "delta could not be applied to the previous payload", {
      cause,
      detail: { field: "payload", delta: true },
    });
  }
  return Uint8Array.from(out);
}

/** One message as the encoder saw it: the full payload, and the delta against the room's previous payload. */
export interface DeltaEncoding {
  /** Number of this payload in the encoder (unique across rooms and evictions, never reused). */
  readonly seq: number;
  /** `seq` of the payload `delta` applies to; undefined for a room's first payload. */
  readonly baseSeq: number | undefined;
  readonly full: Uint8Array;
  /** Present only when smaller than `full`. */
  readonly delta: Uint8Array | undefined;
  readonly payloadFormat: PayloadFormat;
}

export interface DeltaEncoderOptions {
  /** Rooms whose previous payload is kept; the least recently used room is forgotten first. @default 10000 */
  maxRooms?: number;
}

interface RoomBase {
  seq: number;
  payload: Uint8Array;
  format: PayloadFormat;
}

/**
 * Per-node delta state of the rooms with delta subscribers: the previous payload of each room, shared by all its
 * delta subscribers, so a delta is computed once per message, not once per subscriber. Each subscriber keeps a
 * `DeltaCursor` that decides whether it can take the delta (it got the base) or needs the full payload.
 *
 * ```ts
 * const encoding = encoder.encode(key, frame.payload, frame.payloadFormat);   // once per message
 * for (const sub of deltaSubscribers) {
 *   const { payload, delta } = sub.cursor.next(encoding);
 *   send(sub, delta ? { ...frame, payload, delta: true, payloadFormat: "binary" } : frame);
 * }
 * ```
 */
export class DeltaEncoder {
  readonly #rooms = new Map<string, RoomBase>();
  readonly #maxRooms: number;
  #seq = 0;

  constructor(options: DeltaEncoderOptions = {}) {
    this.#maxRooms = Math.max(1, options.maxRooms ?? 10_000);
  }

  /** Records `payload` as the room's newest and returns it with its delta against the previous one (if smaller). */
  encode(room: string, payload: Uint8Array, payloadFormat: PayloadFormat = "json"): DeltaEncoding {
    const seq = ++this.#seq;
    const base = this.#rooms.get(room);
    let delta: Uint8Array | undefined;
    let baseSeq: number | undefined;
    if (base !== undefined) {
      this.#rooms.delete(room);
      if (base.format === payloadFormat) {
        baseSeq = base.seq;
        delta = createDelta(base.payload, payload);
      }
    }
    this.#rooms.set(room, { seq, payload, format: payloadFormat });
    if (this.#rooms.size > this.#maxRooms) this.#rooms.delete(this.#rooms.keys().next().value!);
    return { seq, baseSeq, full: payload, delta, payloadFormat };
  }

  /** Drops a room's previous payload (its last delta subscriber left); its next message goes out full. */
  forget(room: string): void {
    this.#rooms.delete(room);
  }

  get size(): number {
    return this.#rooms.size;
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
  next(encoding: DeltaEncoding): { payload: Uint8Array; delta: boolean } {
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
