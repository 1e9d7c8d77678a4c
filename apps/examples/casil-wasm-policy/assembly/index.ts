// A CASIL Wasm policy (the Overseer ABI, see docs/casil.md): deny payloads that contain the word below, allow the rest.
// The host writes the payload into this module's memory at the pointer `alloc` returns, then calls `inspect`.

/** The word this policy denies (matched as raw UTF-8 bytes, case-sensitive). */
const WORD = "forbidden";
const REASON = "payload contains a forbidden word";

const word = String.UTF8.encode(WORD);
const reason = String.UTF8.encode(REASON);

// The stub runtime never frees: reuse one buffer per call and grow it only when a larger payload arrives.
let buffer: usize = 0;
let capacity: i32 = 0;

/** Returns a pointer to `len` writable bytes in `memory`. */
export function alloc(len: i32): usize {
  if (len > capacity) {
    buffer = heap.alloc(<usize>len);
    capacity = len;
  }
  return buffer;
}

/** 0 = allow, 1 = deny. */
export function inspect(ptr: usize, len: i32): i32 {
  const w = changetype<usize>(word);
  const n = word.byteLength;
  const last = len - n;
  for (let i = 0; i <= last; i++) {
    let j = 0;
    while (j < n && load<u8>(ptr + <usize>(i + j)) == load<u8>(w + <usize>j)) j++;
    if (j == n) return 1;
  }
  return 0;
}

/** Where the UTF-8 reason of the last deny starts. */
export function reason_ptr(): usize {
  return changetype<usize>(reason);
}

/** How many bytes the reason has. */
export function reason_len(): i32 {
  return reason.byteLength;
}
