/**
 * The decoding half of the fossil delta format (https://fossil-scm.org/home/doc/tip/www/delta_format.wiki), written
 * here so that clients that only apply deltas (the browser SDK) do not carry an encoder. The server still creates
 * deltas with the `fossil-delta` package; the tests check both agree on every delta it makes.
 *
 * A delta is `<size>\n` followed by commands, each an integer and an operator: `<n>@<offset>,` copies n bytes of the
 * base from offset, `<n>:<n bytes>` inserts literal bytes, and `<checksum>;` ends the delta. Integers are written in
 * base 64 with the digits `0-9 A-Z _ a-z ~`.
 */

/** Value of each byte as a base-64 digit of the format, or -1. */
const DIGIT = /* @__PURE__ */ (() => {
  const table = new Int8Array(128).fill(-1);
  const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~";
  for (let i = 0; i < digits.length; i++) table[digits.charCodeAt(i)] = i;
  return table;
})();

/** Reads integers and operators from a delta, failing on anything out of bounds. */
class Reader {
  pos = 0;
  constructor(readonly bytes: Uint8Array) {}

  int(): number {
    const start = this.pos;
    if (start >= this.bytes.length) throw new Error("delta ends without a checksum");
    let value = 0;
    while (this.pos < this.bytes.length) {
      const b = this.bytes[this.pos]!;
      const digit = b < 128 ? DIGIT[b]! : -1;
      if (digit < 0) break;
      value = value * 64 + digit;
      // Sizes above 2^32 are not deltas any encoder made; refusing them keeps every later sum exact.
      if (value > 0xffffffff) throw new Error("integer out of range");
      this.pos++;
    }
    if (this.pos === start) throw new Error(`integer expected at byte ${start}`);
    return value;
  }

  op(): number {
    if (this.pos >= this.bytes.length) throw new Error("delta ends without a checksum");
    return this.bytes[this.pos++]!;
  }
}

/** The format's 32-bit checksum: the bytes summed as big-endian 32-bit words, a short tail padded with zeros. */
export function fossilChecksum(bytes: Uint8Array): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const whole = bytes.length - (bytes.length % 4);
  for (let i = 0; i < whole; i += 4) {
    s0 = (s0 + bytes[i]!) | 0;
    s1 = (s1 + bytes[i + 1]!) | 0;
    s2 = (s2 + bytes[i + 2]!) | 0;
    s3 = (s3 + bytes[i + 3]!) | 0;
  }
  let sum = (s3 + (s2 << 8) + (s1 << 16) + (s0 << 24)) | 0;
  const rest = bytes.length - whole;
  if (rest >= 3) sum = (sum + (bytes[whole + 2]! << 8)) | 0;
  if (rest >= 2) sum = (sum + (bytes[whole + 1]! << 16)) | 0;
  if (rest >= 1) sum = (sum + (bytes[whole]! << 24)) | 0;
  return sum >>> 0;
}

/** The size of the payload `delta` rebuilds, read from its header. Throws on a malformed header. */
export function fossilOutputSize(delta: Uint8Array): number {
  const reader = new Reader(delta);
  const size = reader.int();
  if (reader.op() !== 0x0a) throw new Error("size must be followed by a newline");
  return size;
}

/**
 * Rebuilds the payload `delta` was made from against `base`. Throws an Error naming the fault when the delta is
 * malformed, refers outside `base`, rebuilds more than its header (or `maxBytes`) allows, or fails its checksum.
 */
export function fossilApply(base: Uint8Array, delta: Uint8Array, maxBytes = Number.MAX_SAFE_INTEGER): Uint8Array {
  const reader = new Reader(delta);
  const size = reader.int();
  if (reader.op() !== 0x0a) throw new Error("size must be followed by a newline");
  if (size > maxBytes) throw new Error(`delta output of ${size} bytes exceeds ${maxBytes}`);
  const out = new Uint8Array(size);
  let written = 0;
  for (;;) {
    const n = reader.int();
    const op = reader.op();
    if (op === 0x40 /* @ */) {
      const offset = reader.int();
      if (reader.op() !== 0x2c /* , */) throw new Error("copy command must end with a comma");
      if (offset + n > base.length) throw new Error("copy reaches past the end of the base");
      if (written + n > size) throw new Error("copy exceeds the output size");
      out.set(base.subarray(offset, offset + n), written);
      written += n;
    } else if (op === 0x3a /* : */) {
      if (written + n > size) throw new Error("insert exceeds the output size");
      if (reader.pos + n > delta.length) throw new Error("insert reaches past the end of the delta");
      out.set(delta.subarray(reader.pos, reader.pos + n), written);
      reader.pos += n;
      written += n;
    } else if (op === 0x3b /* ; */) {
      if (written !== size) throw new Error(`delta rebuilds ${written} bytes, its header says ${size}`);
      if (n !== fossilChecksum(out)) throw new Error("checksum mismatch: the delta was made against another base");
      return out;
    } else {
      throw new Error(`unknown delta command at byte ${reader.pos - 1}`);
    }
  }
}
