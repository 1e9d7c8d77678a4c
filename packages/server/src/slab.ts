/** Size of the shared slabs that small retained payloads are copied into. */
const SLAB_BYTES = 8192;
/** Payloads up to this size are copied into a slab; larger ones are kept as they are. */
const SLAB_MAX_COPY = 1024;

let slab = new Uint8Array(0);
let slabAt = 0;

/**
 * The bytes of a payload the server is about to keep (history, dedupe, the bus), as a plain `Uint8Array` view into a
 * shared 8 KiB slab, the way Node's Buffer pool carves small buffers. Kept by the hundred thousand in history, payloads
 * each with an ArrayBuffer of their own made the garbage collector's marking the p99 of the rooms benchmark (docs/
 * benchmarks.md, "The lean publish path"); a protobuf payload decoded as a view into its WebSocket message would
 * otherwise keep that whole message alive. A view's `buffer` is the slab: readers use `byteOffset`/`byteLength`.
 */
export function retainable(bytes: Uint8Array): Uint8Array {
  const n = bytes.length;
  if (n === 0 || n > SLAB_MAX_COPY) return bytes;
  if (slab.length - slabAt < n) {
    slab = new Uint8Array(SLAB_BYTES);
    slabAt = 0;
  }
  const out = slab.subarray(slabAt, slabAt + n);
  out.set(bytes);
  slabAt += (n + 7) & ~7;
  return out;
}
