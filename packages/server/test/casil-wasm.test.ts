import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { afterEach, describe, expect, it } from "vitest";
import { ArqonError, ErrorCode, createCasilEngine, jsonBytes, utf8Encode } from "@arqon/core";
import { WasmPolicyHost } from "../src/casil/index.js";
import { ALLOW, DENY_WORD_WASM, GROW_100_PAGES, LOOP_FOREVER, LOOP_ON_4_BYTES, TRAP_ON_4_BYTES, policyModule } from "./casil-wasm-modules.js";
import type { WasmBreakerEvent } from "../src/casil/index.js";

async function validationOf(p: Promise<unknown>): Promise<ArqonError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ArqonError);
  expect((err as ArqonError).code).toBe(ErrorCode.VALIDATION_ERROR);
  return err as ArqonError;
}

let host: WasmPolicyHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});

describe("casil wasm host", () => {
  it("wasm - the AssemblyScript example allows, denies with its reason, fast", async () => {
    host = new WasmPolicyHost({ budgetMs: 200 });
    await host.load("deny-word", new Uint8Array(readFileSync(DENY_WORD_WASM)));
    const allow = await host.evaluate("deny-word", jsonBytes({ text: "hello" }));
    expect(allow).toMatchObject({ verdict: "allow" });
    const deny = await host.evaluate("deny-word", jsonBytes({ text: "a forbidden thing" }));
    expect(deny).toMatchObject({ verdict: "deny", reason: "payload contains a forbidden word" });
    // Warm calls are a worker round trip: far under the budget.
    const times: number[] = [];
    for (let i = 0; i < 50; i++) times.push((await host.evaluate("deny-word", jsonBytes({ i, text: "x".repeat(1000) }))).elapsedMs!);
    times.sort((a, b) => a - b);
    expect(times[25]).toBeLessThan(20);
    expect(await host.evaluate("missing", jsonBytes(1))).toMatchObject({ verdict: "error", error: "unavailable" });
  });

  it("wasm - a trap is an error within the budget and the module is re-instantiated for the next call", async () => {
    host = new WasmPolicyHost({ budgetMs: 200 });
    await host.load("trap", policyModule({ memory: { min: 1, max: 1 }, inspect: TRAP_ON_4_BYTES }));
    const t0 = performance.now();
    const trapped = await host.evaluate("trap", utf8Encode("boom"));
    const elapsed = performance.now() - t0;
    expect(trapped).toMatchObject({ verdict: "error", error: "trap" });
    expect(trapped.reason).toMatch(/unreachable/);
    expect(elapsed).toBeLessThan(200);
    expect(await host.evaluate("trap", utf8Encode("fine!"))).toMatchObject({ verdict: "allow" });
    expect(host.restarts).toBe(0);
  });

  it("wasm - an infinite loop is stopped at the budget, the event loop keeps running, the worker is replaced", async () => {
    const budgetMs = 40;
    host = new WasmPolicyHost({ budgetMs });
    await host.load("loop", policyModule({ memory: { min: 1, max: 1 }, inspect: LOOP_FOREVER }));
    await host.load("ok", policyModule({ memory: { min: 1, max: 1 }, inspect: ALLOW }));
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    const t0 = performance.now();
    const looped = await host.evaluate("loop", utf8Encode("x"));
    const elapsed = performance.now() - t0;
    clearInterval(ticker);
    expect(looped).toMatchObject({ verdict: "error", error: "timeout" });
    expect(elapsed).toBeGreaterThanOrEqual(budgetMs - 1);
    expect(elapsed).toBeLessThan(budgetMs + 150);
    expect(ticks).toBeGreaterThanOrEqual(2);
    expect(host.restarts).toBe(1);
    // The replacement worker has every module again.
    expect(await host.evaluate("ok", utf8Encode("x"))).toMatchObject({ verdict: "allow" });
  });

  it("wasm - circuit breaker: three timeouts in a row disable a policy, calls then fail at once; a trial call after the cooldown brings it back", async () => {
    const events: WasmBreakerEvent[] = [];
    host = new WasmPolicyHost({ budgetMs: 30, breakerThreshold: 3, breakerCooldownMs: 300, onBreaker: (e) => events.push(e) });
    await host.load("sometimes", policyModule({ memory: { min: 1, max: 1 }, inspect: LOOP_ON_4_BYTES }));
    await host.load("other", policyModule({ memory: { min: 1, max: 1 }, inspect: ALLOW }));
    const spin = utf8Encode("spin");
    const fine = utf8Encode("fine!");
    // Two timeouts, then a call that runs to its end: the count starts again.
    for (let i = 0; i < 2; i++) expect(await host.evaluate("sometimes", spin)).toMatchObject({ error: "timeout" });
    expect(await host.evaluate("sometimes", fine)).toMatchObject({ verdict: "allow" });
    expect(host.breakers()).toEqual([]);
    for (let i = 0; i < 3; i++) expect(await host.evaluate("sometimes", spin)).toMatchObject({ error: "timeout" });
    expect(events).toEqual([expect.objectContaining({ policy: "sometimes", state: "open", failures: 3 })]);
    const restarts = host.restarts;
    const t0 = performance.now();
    const refused = await host.evaluate("sometimes", fine);
    expect(performance.now() - t0).toBeLessThan(20);
    expect(refused).toMatchObject({ verdict: "error", error: "disabled" });
    expect((refused as { reason?: string }).reason).toMatch(/disabled after 3 timeouts in a row/);
    expect(host.restarts).toBe(restarts);
    expect(host.breakers()).toEqual([expect.objectContaining({ policy: "sometimes", state: "open", consecutiveFailures: 3, trips: 1 })]);
    // Other policies on the same host are not affected.
    expect(await host.evaluate("other", spin)).toMatchObject({ verdict: "allow" });
    // After the cooldown one trial call goes through; it times out, so the breaker opens again at once.
    await new Promise((r) => setTimeout(r, 320));
    expect(host.breakers()[0]!.state).toBe("half_open");
    const trial = host.evaluate("sometimes", spin);
    expect(await host.evaluate("sometimes", fine)).toMatchObject({ error: "disabled" });
    expect(await trial).toMatchObject({ error: "timeout" });
    expect(host.breakers()[0]).toMatchObject({ state: "open", trips: 2 });
    // The next trial runs to its end: closed again, and every call is evaluated.
    await new Promise((r) => setTimeout(r, 320));
    expect(await host.evaluate("sometimes", fine)).toMatchObject({ verdict: "allow" });
    expect(events.map((e) => e.state)).toEqual(["open", "open", "closed"]);
    expect(host.breakers()).toEqual([expect.objectContaining({ state: "closed", consecutiveFailures: 0, trips: 2 })]);
    // Loading the module again (a reload) starts from a clean breaker.
    await host.load("sometimes", policyModule({ memory: { min: 1, max: 1 }, inspect: LOOP_ON_4_BYTES }));
    expect(host.breakers()).toEqual([]);
  });

  it("wasm - through the engine a disabled policy is a fail-closed block flagged wasm_disabled", async () => {
    host = new WasmPolicyHost({ budgetMs: 20, breakerThreshold: 1, breakerCooldownMs: 60_000 });
    await host.load("spin", policyModule({ memory: { min: 1, max: 1 }, inspect: LOOP_FOREVER }));
    const engine = createCasilEngine({ policy: { mode: "enforce", wasm: [{ name: "spin" }] }, wasm: host });
    const first = await engine.inspect({ tenant: "t", room: "r", path: "publish", payload: jsonBytes({ a: 1 }) });
    expect(first).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_INTERNAL_ERROR, flags: expect.arrayContaining(["wasm_timeout"]) });
    const second = await engine.inspect({ tenant: "t", room: "r", path: "publish", payload: jsonBytes({ a: 1 }) });
    expect(second).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_INTERNAL_ERROR, flags: expect.arrayContaining(["wasm_disabled"]) });
    expect(engine.stats().wasm).toEqual(expect.arrayContaining([{ policy: "spin", outcome: "timeout", count: 1 }, { policy: "spin", outcome: "disabled", count: 1 }]));
  });

  it("wasm - memory: a maximum over the cap and a missing maximum are refused at load; growing past the maximum traps", async () => {
    host = new WasmPolicyHost({ budgetMs: 200, maxMemoryPages: 16 });
    const over = await validationOf(host.load("big", policyModule({ memory: { min: 1, max: 17 }, inspect: ALLOW })));
    expect(over.message).toBe('Wasm policy "big": memory maximum of 17 pages exceeds the cap of 16 pages (1 MiB)');
    const missing = await validationOf(host.load("nomax", policyModule({ memory: { min: 1 }, inspect: ALLOW })));
    expect(missing.message).toMatch(/^Wasm policy "nomax": memory declares no maximum size/);
    expect(host.has("big") || host.has("nomax")).toBe(false);
    const imported = await validationOf(host.load("imp", policyModule({ memory: { min: 1, max: 1 }, inspect: ALLOW, importName: "fetch" })));
    expect(imported.message).toMatch(/imports "env.fetch"; only env.abort may be imported/);
    const junk = await validationOf(host.load("junk", utf8Encode("not wasm at all")));
    expect(junk.message).toBe('Wasm policy "junk": not a WebAssembly module');
    const huge = await validationOf(host.load("huge", new Uint8Array(8 * 1024 * 1024 + 1)));
    expect(huge.message).toBe('Wasm policy "huge": module is larger than 8388608 bytes');
    await host.load("grow", policyModule({ memory: { min: 1, max: 2 }, inspect: GROW_100_PAGES }));
    const t0 = performance.now();
    expect(await host.evaluate("grow", utf8Encode("x"))).toMatchObject({ verdict: "error", error: "trap" });
    expect(performance.now() - t0).toBeLessThan(200);
  });

  it("wasm - through the engine: allow, CASIL_WASM_DENY, and fail-closed blocks for trap and timeout with timings", async () => {
    const budgetMs = 40;
    host = new WasmPolicyHost({ budgetMs });
    await host.load("deny-word", new Uint8Array(readFileSync(DENY_WORD_WASM)));
    await host.load("trap", policyModule({ memory: { min: 1, max: 1 }, inspect: TRAP_ON_4_BYTES }));
    await host.load("loop", policyModule({ memory: { min: 1, max: 1 }, inspect: LOOP_FOREVER }));
    const engine = createCasilEngine({
      policy: { mode: "enforce", wasm: [{ name: "deny-word" }, { name: "trap", rooms: ["traps"] }, { name: "loop", rooms: ["loops"] }] },
      wasm: host,
    });
    const inspect = async (room: string, payload: unknown) => {
      const t0 = performance.now();
      const decision = await engine.inspect({ tenant: "acme", room, path: "publish", payload: jsonBytes(payload) });
      return { decision, ms: performance.now() - t0 };
    };
    const allow = await inspect("lobby", { text: "hello" });
    expect(allow.decision).toMatchObject({ action: "allow" });
    const deny = await inspect("lobby", "forbidden fruit");
    expect(deny.decision).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_WASM_DENY, message: "deny-word: payload contains a forbidden word" });
    const trap = await inspect("traps", "ab"); // "ab" as JSON is 4 bytes
    expect(trap.decision).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_INTERNAL_ERROR, message: 'Wasm policy "trap" failed (trap); blocked' });
    expect(trap.ms).toBeLessThan(budgetMs + 150);
    const loop = await inspect("loops", "spin");
    expect(loop.decision).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_INTERNAL_ERROR, message: 'Wasm policy "loop" failed (timeout); blocked' });
    expect(loop.ms).toBeGreaterThanOrEqual(budgetMs - 1);
    expect(loop.ms).toBeLessThan(budgetMs + 150);
    expect((await inspect("lobby", { text: "after the loop" })).decision).toMatchObject({ action: "allow" });
  });
});
