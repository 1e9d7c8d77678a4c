// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- fossil-delta ships no types; the reference brings them into every program that compiles core sources (server, sdk)
/// <reference path="./fossil-delta.d.ts" />
// The encoding side of deltas, kept apart from the decoder so that clients, which only apply deltas, never bundle the
// fossil-delta encoder.
import fossilDelta from "fossil-delta";
import type { PayloadFormat } from "../frame/types.js";

/**
 * A fossil delta turning `prev` into `next`, or undefined when it would not be smaller than `next` (then send `next`
 * itself). Works on plain Uint8Arrays in browsers and Node alike.
 */
export function createDelta(prev: Uint8Array, next: Uint8Array): Uint8Array | undefined {
  if (next.length === 0) return undefined;
  const delta = fossilDelta.create(prev, next);
  return delta.length < next.length ? Uint8Array.from(delta) : undefined;
}

/** One message as the encoder saw it: the full payload, and the delta against the room's previous payload. */
export interface DeltaEncoding {
  /** Number of this payload in the encoder (unique across rooms and evictions, never reused). */
  readonly seq: number;
  /** `seq` of the payload `delta` applies to; undefined for a room's first payload. */
  readonly baseSeq: number | undefined;
  /** The payload itself, as given to `encode`. */
  readonly full: Uint8Array;
  /** Present only when smaller than `full`. */
  readonly delta: Uint8Array | undefined;
  /** Format of `full`; a delta is only made against a previous payload of the same format. */
  readonly payloadFormat: PayloadFormat;
}

/** Options of a {@link DeltaEncoder}. */
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

  /** Number of rooms whose previous payload is currently kept. */
  get size(): number {
    return this.#rooms.size;
  }
}

