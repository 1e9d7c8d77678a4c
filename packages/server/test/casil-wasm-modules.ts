import { fileURLToPath } from "node:url";
import { utf8Encode } from "@arqon/core";

/** The AssemblyScript example policy, built by `npm run build -w @arqon/example-casil-wasm-policy` (committed). */
export const DENY_WORD_WASM = fileURLToPath(new URL("../../../apps/examples/casil-wasm-policy/build/deny-word.wasm", import.meta.url));

// A tiny encoder for hand-made policy modules (shared by the casil-wasm and casil-layers tests): (type, function,
// memory, export, code) sections of the binary format.
function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}
const str = (s: string): number[] => [...leb(s.length), ...utf8Encode(s)];
const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];
const vec = (items: number[][]): number[] => [...leb(items.length), ...items.flat()];

export interface ModuleSpec {
  /** Memory limits in pages; `max` undefined declares none. */
  memory: { min: number; max?: number };
  /** Body of `inspect(ptr, len) -> i32` (instructions only; `end` is added). */
  inspect: number[];
  importAbort?: boolean;
  importName?: string;
}

/** Encodes a module exporting memory, alloc (returns 16) and inspect. */
export function policyModule(spec: ModuleSpec): Uint8Array {
  const types = section(1, vec([[0x60, 1, 0x7f, 1, 0x7f], [0x60, 2, 0x7f, 0x7f, 1, 0x7f], [0x60, 0, 0]]));
  const imports = spec.importName ? section(2, vec([[...str("env"), ...str(spec.importName), 0x00, ...leb(2)]])) : [];
  const offset = spec.importName ? 1 : 0;
  const funcs = section(3, vec([[0], [1]]));
  const limits = spec.memory.max === undefined ? [0x00, ...leb(spec.memory.min)] : [0x01, ...leb(spec.memory.min), ...leb(spec.memory.max)];
  const memory = section(5, vec([limits]));
  const exports = section(7, vec([[...str("memory"), 0x02, 0], [...str("alloc"), 0x00, offset], [...str("inspect"), 0x00, offset + 1]]));
  const body = (code: number[]): number[] => {
    const b = [0x00, ...code, 0x0b];
    return [...leb(b.length), ...b];
  };
  const code = section(10, vec([body([0x41, 0x10]), body(spec.inspect)]));
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...types, ...imports, ...funcs, ...memory, ...exports, ...code]);
}

export const ALLOW = [0x41, 0x00];
export const TRAP_ON_4_BYTES = [0x20, 0x01, 0x41, 0x04, 0x46, 0x04, 0x40, 0x00, 0x0b, 0x41, 0x00]; // if (len == 4) unreachable; return 0
export const LOOP_FOREVER = [0x03, 0x40, 0x0c, 0x00, 0x0b, 0x41, 0x00]; // loop { br 0 }; return 0
export const LOOP_ON_4_BYTES = [0x20, 0x01, 0x41, 0x04, 0x46, 0x04, 0x40, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, 0x41, 0x00]; // if (len == 4) loop { br 0 }; return 0
export const GROW_100_PAGES = [0x41, 0xe4, 0x00, 0x40, 0x00, 0x41, 0x7f, 0x46, 0x04, 0x40, 0x00, 0x0b, 0x41, 0x00]; // if (memory.grow(100) == -1) unreachable
