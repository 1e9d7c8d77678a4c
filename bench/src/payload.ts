import { now } from "./clock.js";

/** The bytes `"ts":` that precede the send timestamp in every bench message, whatever the system's framing. */
export const TS_MARK = Buffer.from('"ts":', "latin1");

/** Size of the application payload every system carries (UTF-8 JSON). */
export const PAYLOAD_BYTES = 100;

/**
 * A ~100-byte JSON object `{"ts":<send time ms>,"seq":n,"pad":"xx…"}`, stamped at call time with the shared clock.
 * Every system carries exactly this text as its message payload.
 */
export function makePayload(seq: number, size = PAYLOAD_BYTES): string {
  const head = `{"ts":${now().toFixed(3)},"seq":${seq},"pad":"`;
  const padLen = Math.max(0, size - head.length - 2);
  return head + "x".repeat(padLen) + '"}';
}

/**
 * The send timestamp inside a received frame (any framing that keeps the payload's JSON text), or -1. `from`/`to`
 * bound the search to one frame inside a larger buffer (the lean reader's chunks).
 */
export function extractTs(buf: Buffer, from = 0, to = buf.length): number {
  const i = buf.indexOf(TS_MARK, from);
  if (i < 0 || i >= to) return -1;
  const start = i + TS_MARK.length;
  let end = start;
  const len = to;
  while (end < len) {
    const c = buf[end]!;
    if ((c >= 48 && c <= 57) || c === 46) end++;
    else break;
  }
  return Number(buf.toString("latin1", start, end));
}
