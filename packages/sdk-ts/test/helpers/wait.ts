import type { Emitter } from "../../src/index.js";

/** Resolves with the next `type` event of `emitter` that passes `test`, or rejects after `timeoutMs`. */
export function nextEvent<E extends { [K in keyof E]: unknown }, K extends keyof E>(
  emitter: Emitter<E>,
  type: K,
  test: (event: E[K]) => boolean = () => true,
  timeoutMs = 3000,
): Promise<E[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no "${String(type)}" event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = emitter.on(type, (event) => {
      if (!test(event)) return;
      clearTimeout(timer);
      off();
      resolve(event);
    });
  });
}

/** Collects every `type` event of `emitter` into an array (for order assertions). */
export function collect<E extends { [K in keyof E]: unknown }, K extends keyof E>(emitter: Emitter<E>, type: K): E[K][] {
  const out: E[K][] = [];
  emitter.on(type, (event) => out.push(event));
  return out;
}

/** Polls `check` until it returns true (bounded). */
export async function until(check: () => boolean, timeoutMs = 3000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
