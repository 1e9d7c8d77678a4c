import { ArqonError, ErrorCode } from "@arqon/core";

/** The parts of the WebAssembly JS API used here (the package's lib settings carry no DOM typings). */
export interface WasmApi {
  Module: {
    new (bytes: Uint8Array): WebAssembly.Module;
    exports(module: WebAssembly.Module): Array<{ name: string; kind: string }>;
  };
}
export const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** One WebAssembly page: 64 KiB. */
export const WASM_PAGE_BYTES = 65536;
/** Largest policy module accepted, in bytes. */
export const MAX_WASM_MODULE_BYTES = 8 * 1024 * 1024;

function invalid(name: string, message: string): ArqonError {
  return new ArqonError(ErrorCode.VALIDATION_ERROR, `Wasm policy "${name}": ${message}`, { detail: { policy: name } });
}

class Reader {
  constructor(
    readonly bytes: Uint8Array,
    public pos = 0,
  ) {}
  byte(): number {
    if (this.pos >= this.bytes.length) throw new RangeError("unexpected end of module");
    return this.bytes[this.pos++]!;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
    throw new RangeError("LEB128 too long");
  }
  name(): string {
    const len = this.u32();
    const s = new TextDecoder().decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }
  limits(): { flags: number; min: number; max?: number } {
    const flags = this.byte();
    const min = this.u32();
    const max = flags & 1 ? this.u32() : undefined;
    return { flags, min, max };
  }
}

/** What `checkWasmPolicyModule` found in a module that passed. */
export interface WasmModuleInfo {
  /** The compiled module. */
  module: WebAssembly.Module;
  /** The initial size of its memory, in 64 KiB pages. */
  minPages: number;
  /** The declared maximum of its memory, in 64 KiB pages (at most the cap it was checked against). */
  maxPages: number;
  /** Whether it exports `reason_ptr` and `reason_len`, so a deny can carry its reason. */
  hasReason: boolean;
}

/**
 * Checks a policy module against the ABI (docs/casil.md) before it is ever instantiated: it must define (not import)
 * exactly one 32-bit memory with a declared maximum of at most `maxPages`, export `memory`, `alloc` and `inspect`, and
 * import nothing but `env.abort`. Throws ArqonError VALIDATION_ERROR saying what is wrong.
 */
export function checkWasmPolicyModule(name: string, bytes: Uint8Array, maxPages: number): WasmModuleInfo {
  if (bytes.length > MAX_WASM_MODULE_BYTES) throw invalid(name, `module is larger than ${MAX_WASM_MODULE_BYTES} bytes`);
  if (bytes.length < 8 || bytes[0] !== 0x00 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) throw invalid(name, "not a WebAssembly module");
  let module: WebAssembly.Module;
  try {
    module = new wasmApi.Module(bytes);
  } catch (err) {
    throw invalid(name, `does not compile: ${(err as Error).message}`);
  }
  let memory: { flags: number; min: number; max?: number } | undefined;
  let memories = 0;
  try {
    const r = new Reader(bytes, 8);
    while (r.pos < bytes.length) {
      const id = r.byte();
      const size = r.u32();
      const end = r.pos + size;
      if (id === 2) {
        const count = r.u32();
        for (let i = 0; i < count; i++) {
          const mod = r.name();
          const field = r.name();
          const kind = r.byte();
          if (kind === 2) throw invalid(name, "imports its memory; a policy must define and export its own");
          if (kind !== 0 || mod !== "env" || field !== "abort") throw invalid(name, `imports "${mod}.${field}"; only env.abort may be imported`);
          r.u32();
        }
      } else if (id === 5) {
        memories = r.u32();
        if (memories >= 1) memory = r.limits();
      }
      r.pos = end;
    }
  } catch (err) {
    if (err instanceof ArqonError) throw err;
    throw invalid(name, `malformed module: ${(err as Error).message}`);
  }
  if (!memory || memories !== 1) throw invalid(name, "must define exactly one memory");
  if (memory.flags & 0x04) throw invalid(name, "64-bit memories are not supported");
  if (memory.flags & 0x02) throw invalid(name, "shared memories are not supported");
  if (memory.max === undefined) throw invalid(name, "memory declares no maximum size; declare one (e.g. --maximumMemory) of at most " + maxPages + " pages");
  if (memory.max > maxPages) throw invalid(name, `memory maximum of ${memory.max} pages exceeds the cap of ${maxPages} pages (${(maxPages * WASM_PAGE_BYTES) / 1048576} MiB)`);
  const exports = new Map(wasmApi.Module.exports(module).map((e) => [e.name, e.kind]));
  if (exports.get("memory") !== "memory") throw invalid(name, 'must export its memory as "memory"');
  for (const fn of ["alloc", "inspect"]) if (exports.get(fn) !== "function") throw invalid(name, `must export a function "${fn}"`);
  const hasReason = exports.get("reason_ptr") === "function" && exports.get("reason_len") === "function";
  return { module, minPages: memory.min, maxPages: memory.max, hasReason };
}
