/** Bounded waits for contract tests: poll a condition instead of sleeping a fixed time. */

/** Options of `waitFor` and `waitForCount`. */
export interface WaitOptions {
  /** How long to wait before rejecting, in milliseconds. @default 2000 */
  timeoutMs?: number;
  /** Pause between two checks, in milliseconds. @default 5 */
  intervalMs?: number;
  /** Said in the error when the wait times out. */
  message?: string;
}

/** Resolves after `ms` milliseconds of real time. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves with the first truthy value `check` returns; rejects after `timeoutMs` with `message` (and the last error
 * `check` threw, as cause).
 */
export async function waitFor<T>(
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  options: WaitOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 2000;
  const intervalMs = options.intervalMs ?? 5;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms: ${options.message ?? "condition not met"}`, { cause: lastError });
    }
    await sleep(intervalMs);
  }
}

/** Waits until `list` holds at least `count` items; resolves with it. */
export function waitForCount<T>(list: readonly T[], count: number, options: WaitOptions = {}): Promise<readonly T[]> {
  return waitFor(() => list.length >= count && list, {
    ...options,
    message: options.message ?? `expected ${count} items, have ${list.length}`,
  });
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 JSON bytes of `value` (payloads, presence info and state values are carried this way). */
export function json(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** Parses UTF-8 JSON bytes. Accepts any Uint8Array subclass a backend may hand back. */
export function parse(bytes: Uint8Array | undefined): unknown {
  return bytes === undefined ? undefined : JSON.parse(decoder.decode(bytes));
}

/** Byte-wise copy as a plain array, for equality checks that must not care about the Uint8Array subclass. */
export function bytesOf(bytes: Uint8Array | undefined): number[] | undefined {
  return bytes === undefined ? undefined : Array.from(bytes);
}

/** A tenant id no other test uses, so backends that share a server across tests never see each other's data. */
export function uniqueTenant(prefix = "t"): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(6));
  let out = prefix;
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}
