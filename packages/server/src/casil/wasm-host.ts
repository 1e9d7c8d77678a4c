import { performance } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import { ArqonError, ErrorCode, type CasilWasmHost, type CasilWasmResult } from "@arqon/core";
import { MAX_WASM_MODULE_BYTES, checkWasmPolicyModule } from "./wasm-module.js";

/** Options of the Wasm worker pool (`CasilControllerOptions.wasm`). */
export interface WasmPolicyHostOptions {
  /** Time budget of one call; past it the worker is terminated and the call is a fail-closed error. @default 25 */
  budgetMs?: number;
  /** Largest declared memory maximum a module may have, in 64 KiB pages. @default 256 (16 MiB) */
  maxMemoryPages?: number;
  /** Worker threads in the pool. @default 1 */
  workers?: number;
  /** Calls that may wait for a busy pool; more fail closed at once. @default 1024 */
  maxQueue?: number;
  /** How long a call may wait for a free worker before it fails closed. @default 500 */
  queueTimeoutMs?: number;
  /**
   * Calls accepted per second (a token bucket holding one second's worth); calls beyond it resolve at once as
   * `{ verdict: "error", error: "rate_limited" }` (the engine blocks with CASIL_INTERNAL_ERROR, flag `wasm_rate_limited`)
   * and never wait in the queue. @default unlimited
   */
  callsPerSecond?: number;
  /** Largest module `load` accepts, in bytes. @default 8388608 (MAX_WASM_MODULE_BYTES) */
  maxModuleBytes?: number;
  /**
   * Circuit breaker: a policy whose calls time out (or crash the worker) this many times in a row is disabled; its
   * calls resolve at once as `{ verdict: "error", error: "disabled" }` (the engine still fails closed, flag
   * `wasm_disabled`, but no call waits for a budget or respawns a worker). @default 3
   */
  breakerThreshold?: number;
  /** How long a disabled policy stays disabled before one trial call may close the breaker again. @default 30000 */
  breakerCooldownMs?: number;
  /** Told when a policy is disabled (`open`) and when a trial call brings it back (`closed`). */
  onBreaker?: (event: WasmBreakerEvent) => void;
}

/** A circuit-breaker change of one Wasm policy. */
export interface WasmBreakerEvent {
  /** The Wasm policy's name. */
  policy: string;
  /** "open": the policy was disabled; "closed": a trial call ran and it is enabled again. */
  state: "open" | "closed";
  /** Consecutive timeouts or crashes that opened it. */
  failures: number;
  /** When an open breaker lets a trial call through (ISO time). */
  retryAt?: string;
}

/** The breaker of one Wasm policy, as `WasmPolicyHost.breakers()` reports it. */
export interface WasmBreakerStatus {
  /** The Wasm policy's name. */
  policy: string;
  /**
   * "closed": calls run (listed for its failures or past trips); "open": calls are refused until `retryAt`;
   * "half_open": the cooldown is over and a trial call may run or is running.
   */
  state: "closed" | "open" | "half_open";
  /** Timeouts or crashes in a row since the last call that ran to its end. */
  consecutiveFailures: number;
  /** How many times the breaker opened since the module was loaded. */
  trips: number;
  /** For an open breaker: when the next trial call is let through (ISO time). */
  retryAt?: string;
}

interface Breaker {
  failures: number;
  trips: number;
  /** performance.now() until which calls are refused; undefined when closed. */
  openUntil?: number;
  /** A half-open trial call is running: other calls are still refused. */
  trial: boolean;
}

// The worker runs plain JavaScript (eval), so the same code serves the TypeScript sources and the built package.
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const modules = new Map();
const decoder = new TextDecoder();
const imports = { env: { abort() { throw new Error("abort called"); } } };
function instantiate(entry) { entry.instance = new WebAssembly.Instance(entry.module, imports); }
parentPort.on("message", (msg) => {
  if (msg.op === "load") {
    const entry = { module: msg.module, instance: undefined };
    try { instantiate(entry); modules.set(msg.name, entry); parentPort.postMessage({ id: msg.id, ok: true }); }
    catch (e) { parentPort.postMessage({ id: msg.id, ok: false, reason: String((e && e.message) || e) }); }
    return;
  }
  if (msg.op === "unload") { modules.delete(msg.name); return; }
  const entry = modules.get(msg.name);
  if (!entry) { parentPort.postMessage({ id: msg.id, error: "unavailable", reason: "not loaded" }); return; }
  try {
    if (!entry.instance) instantiate(entry);
    const ex = entry.instance.exports;
    const payload = msg.payload;
    const len = payload.length;
    const ptr = ex.alloc(len) >>> 0;
    if (ptr + len > ex.memory.buffer.byteLength) throw new RangeError("alloc returned a region outside memory");
    new Uint8Array(ex.memory.buffer, ptr, len).set(payload);
    const code = ex.inspect(ptr, len);
    let reason;
    if (code !== 0 && msg.reason) {
      const rp = ex.reason_ptr() >>> 0;
      const rl = Math.min(ex.reason_len() >>> 0, 256);
      if (rp + rl <= ex.memory.buffer.byteLength) reason = decoder.decode(new Uint8Array(ex.memory.buffer, rp, rl));
    }
    parentPort.postMessage({ id: msg.id, code, reason });
  } catch (e) {
    entry.instance = undefined;
    parentPort.postMessage({ id: msg.id, error: "trap", reason: String((e && e.message) || e) });
    try { instantiate(entry); } catch (_) { /* retried on the next call */ }
  }
});
`;

interface Call {
  id: number;
  name: string;
  payload: Uint8Array;
  started: number;
  resolve: (result: CasilWasmResult) => void;
  timer?: NodeJS.Timeout;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  busy?: Call;
  pendingLoads: Map<number, (reply: { ok: boolean; reason?: string }) => void>;
}

interface WorkerReply {
  id: number;
  ok?: boolean;
  code?: number;
  reason?: string;
  error?: string;
}

/**
 * Runs Wasm policies (the Overseer ABI, docs/casil.md) in a pool of worker threads so a slow or looping policy never
 * blocks the event loop. Each call has a time budget: past it the worker is terminated, the call resolves as
 * `{ verdict: "error", error: "timeout" }` (the engine blocks with CASIL_INTERNAL_ERROR) and a fresh worker with
 * freshly instantiated modules replaces it. A trap resolves as `error: "trap"` and the module is re-instantiated.
 */
export class WasmPolicyHost implements CasilWasmHost {
  /** The time budget of one call, in ms. */
  readonly budgetMs: number;
  /** The largest declared memory maximum a module may have, in 64 KiB pages. */
  readonly maxMemoryPages: number;
  private readonly maxQueue: number;
  private readonly queueTimeoutMs: number;
  /** The largest module `load` accepts, in bytes (never above MAX_WASM_MODULE_BYTES). */
  readonly maxModuleBytes: number;
  /** Calls accepted per second; undefined when unlimited. */
  readonly callsPerSecond: number | undefined;
  private tokens = 0;
  private refilledAt = 0;
  private readonly modules = new Map<string, { module: WebAssembly.Module; hasReason: boolean }>();
  private readonly breakerThreshold: number;
  private readonly breakerCooldownMs: number;
  private readonly onBreaker: ((event: WasmBreakerEvent) => void) | undefined;
  private readonly breakerOf = new Map<string, Breaker>();
  private readonly slots: Slot[] = [];
  private readonly queue: Call[] = [];
  private nextId = 1;
  private closed = false;
  /** Workers terminated by the watchdog or lost to a crash (for tests and metrics). */
  restarts = 0;

  constructor(options: WasmPolicyHostOptions = {}) {
    this.budgetMs = options.budgetMs ?? 25;
    this.maxMemoryPages = options.maxMemoryPages ?? 256;
    this.maxQueue = options.maxQueue ?? 1024;
    this.queueTimeoutMs = options.queueTimeoutMs ?? 500;
    this.maxModuleBytes = Math.min(options.maxModuleBytes ?? MAX_WASM_MODULE_BYTES, MAX_WASM_MODULE_BYTES);
    this.breakerThreshold = Math.max(1, Math.floor(options.breakerThreshold ?? 3));
    this.breakerCooldownMs = Math.max(0, options.breakerCooldownMs ?? 30_000);
    this.onBreaker = options.onBreaker;
    if (options.callsPerSecond !== undefined) {
      if (!(options.callsPerSecond > 0)) throw new RangeError("callsPerSecond must be positive");
      this.callsPerSecond = options.callsPerSecond;
      this.tokens = Math.max(1, options.callsPerSecond);
      this.refilledAt = performance.now();
    }
    const count = Math.max(1, options.workers ?? 1);
    for (let i = 0; i < count; i++) this.slots.push(this.spawn());
  }

  /** Validates (ABI, memory cap) and loads or replaces a policy in every worker. Throws VALIDATION_ERROR. */
  async load(name: string, bytes: Uint8Array): Promise<void> {
    if (this.closed) throw new Error("Wasm policy host is closed");
    if (bytes.length > this.maxModuleBytes) {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, `Wasm policy "${name}": module is larger than ${this.maxModuleBytes} bytes`, { detail: { policy: name, limit: this.maxModuleBytes } });
    }
    const info = checkWasmPolicyModule(name, bytes, this.maxMemoryPages);
    const previous = this.modules.get(name);
    // A new module starts with a closed breaker.
    this.breakerOf.delete(name);
    // Registered first so that a worker replaced meanwhile loads it too.
    this.modules.set(name, { module: info.module, hasReason: info.hasReason });
    const replies = await Promise.all(this.slots.map((slot) => this.loadInto(slot, name, info.module)));
    const failed = replies.find((r) => !r.ok);
    if (failed) {
      if (previous) {
        this.modules.set(name, previous);
        for (const slot of this.slots) void this.loadInto(slot, name, previous.module);
      } else {
        this.modules.delete(name);
        for (const slot of this.slots) slot.worker.postMessage({ op: "unload", name });
      }
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, `Wasm policy "${name}": instantiation failed: ${failed.reason ?? "unknown"}`, { detail: { policy: name } });
    }
  }

  /** Whether a policy of that name is loaded. */
  has(name: string): boolean {
    return this.modules.has(name);
  }

  /** The names of the loaded policies, in the order they were first loaded. */
  get names(): string[] {
    return [...this.modules.keys()];
  }

  /** Every policy whose breaker is not plainly closed with no failure, in name order. */
  breakers(): WasmBreakerStatus[] {
    const now = performance.now();
    return [...this.breakerOf]
      .filter(([, b]) => b.failures > 0 || b.trips > 0 || b.openUntil !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([policy, b]) => {
        const state = b.openUntil === undefined ? "closed" : b.trial || now >= b.openUntil ? "half_open" : "open";
        const status: WasmBreakerStatus = { policy, state, consecutiveFailures: b.failures, trips: b.trips };
        if (b.openUntil !== undefined) status.retryAt = isoAt(b.openUntil);
        return status;
      });
  }

  /**
   * Runs policy `name` on `payload` in a free worker (waiting in the queue if none is). Never rejects: resolves with
   * "allow" (the module returned 0), "deny" (with the module's reason, when it exports one) or an error result:
   * "unavailable" (not loaded, or the host closed), "disabled" (breaker open), "rate_limited", "saturated" (queue
   * full or no worker free in time), "timeout", "trap" or "crashed".
   */
  evaluate(name: string, payload: Uint8Array): Promise<CasilWasmResult> {
    if (this.closed || !this.modules.has(name)) return Promise.resolve({ verdict: "error", error: "unavailable", reason: `Wasm policy "${name}" is not loaded` });
    const breaker = this.breakerOf.get(name);
    if (breaker?.openUntil !== undefined) {
      if (breaker.trial || performance.now() < breaker.openUntil) {
        return Promise.resolve({ verdict: "error", error: "disabled", reason: `Wasm policy "${name}" is disabled after ${breaker.failures} timeouts in a row (retried at ${isoAt(breaker.openUntil)})` });
      }
      breaker.trial = true;
    }
    if (this.callsPerSecond !== undefined && !this.takeToken()) {
      if (breaker) breaker.trial = false;
      return Promise.resolve({ verdict: "error", error: "rate_limited", reason: `over the budget of ${this.callsPerSecond} Wasm calls per second` });
    }
    return new Promise<CasilWasmResult>((done) => {
      const resolve = (result: CasilWasmResult): void => {
        this.observe(name, result);
        done(result);
      };
      const call: Call = { id: this.nextId++, name, payload, started: performance.now(), resolve };
      const idle = this.slots.find((s) => s.ready && !s.busy);
      if (idle) return this.dispatch(idle, call);
      if (this.queue.length >= this.maxQueue) return resolve({ verdict: "error", error: "saturated", reason: "Wasm policy queue is full" });
      call.timer = setTimeout(() => {
        const at = this.queue.indexOf(call);
        if (at >= 0) this.queue.splice(at, 1);
        resolve({ verdict: "error", error: "saturated", reason: `no Wasm worker free within ${this.queueTimeoutMs} ms`, elapsedMs: performance.now() - call.started });
      }, this.queueTimeoutMs);
      this.queue.push(call);
    });
  }

  /** Terminates every worker; pending calls resolve as errors (fail closed). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const call of this.queue.splice(0)) {
      clearTimeout(call.timer);
      call.resolve({ verdict: "error", error: "unavailable", reason: "host closed" });
    }
    await Promise.all(
      this.slots.map(async (slot) => {
        const busy = slot.busy;
        slot.busy = undefined;
        if (busy) {
          clearTimeout(busy.timer);
          busy.resolve({ verdict: "error", error: "unavailable", reason: "host closed" });
        }
        await slot.worker.terminate();
      }),
    );
  }

  /** Feeds one call's outcome to the policy's breaker: timeouts and crashes count, a call that ran to its end resets. */
  private observe(name: string, result: CasilWasmResult): void {
    if (!this.modules.has(name)) return;
    const failed = result.verdict === "error" && (result.error === "timeout" || result.error === "crashed");
    const ran = result.verdict !== "error" || result.error === "trap";
    let b = this.breakerOf.get(name);
    if (failed) {
      if (!b) this.breakerOf.set(name, (b = { failures: 0, trips: 0, trial: false }));
      b.failures++;
      const reopen = b.trial;
      b.trial = false;
      if (reopen || (b.openUntil === undefined && b.failures >= this.breakerThreshold)) {
        b.trips++;
        b.openUntil = performance.now() + this.breakerCooldownMs;
        this.tell({ policy: name, state: "open", failures: b.failures, retryAt: isoAt(b.openUntil) });
      }
      return;
    }
    if (!b) return;
    if (ran) {
      const wasOpen = b.openUntil !== undefined;
      const failures = b.failures;
      b.failures = 0;
      b.trial = false;
      b.openUntil = undefined;
      if (wasOpen) this.tell({ policy: name, state: "closed", failures });
    } else if (b.trial) {
      // The trial never ran (queue full, host closing): the next call tries again.
      b.trial = false;
    }
  }

  private tell(event: WasmBreakerEvent): void {
    try {
      this.onBreaker?.(event);
    } catch {
      // A listener's failure is not the policy's.
    }
  }

  private takeToken(): boolean {
    const rate = this.callsPerSecond!;
    const now = performance.now();
    this.tokens = Math.min(Math.max(1, rate), this.tokens + ((now - this.refilledAt) * rate) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true, resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 } });
    const slot: Slot = { worker, ready: false, pendingLoads: new Map() };
    worker.unref();
    worker.on("message", (reply: WorkerReply) => this.onReply(slot, reply));
    worker.on("error", () => this.replace(slot, "crashed"));
    worker.on("exit", () => {
      if (!this.closed && this.slots.includes(slot)) this.replace(slot, "crashed");
    });
    const loads = [...this.modules].map(([name, m]) => this.loadInto(slot, name, m.module));
    void Promise.all(loads).then(() => {
      if (this.slots.includes(slot)) {
        slot.ready = true;
        this.pump();
      }
    });
    return slot;
  }

  private loadInto(slot: Slot, name: string, module: WebAssembly.Module): Promise<{ ok: boolean; reason?: string }> {
    return new Promise((resolve) => {
      const id = this.nextId++;
      slot.pendingLoads.set(id, resolve);
      slot.worker.postMessage({ op: "load", id, name, module });
    });
  }

  private dispatch(slot: Slot, call: Call): void {
    clearTimeout(call.timer);
    slot.busy = call;
    call.timer = setTimeout(() => {
      if (slot.busy !== call) return;
      slot.busy = undefined;
      call.resolve({ verdict: "error", error: "timeout", reason: `exceeded the ${this.budgetMs} ms budget`, elapsedMs: performance.now() - call.started });
      this.replace(slot, "timeout");
    }, this.budgetMs);
    // A view into a larger buffer (payloads are carved from shared slabs) is copied: cloning it would send the whole buffer.
    const payload = call.payload.byteLength === call.payload.buffer.byteLength ? call.payload : call.payload.slice();
    slot.worker.postMessage({ op: "call", id: call.id, name: call.name, payload, reason: this.modules.get(call.name)?.hasReason ?? false });
  }

  private onReply(slot: Slot, reply: WorkerReply): void {
    const load = slot.pendingLoads.get(reply.id);
    if (load) {
      slot.pendingLoads.delete(reply.id);
      load({ ok: reply.ok === true, reason: reply.reason });
      return;
    }
    const call = slot.busy;
    if (!call || call.id !== reply.id) return;
    clearTimeout(call.timer);
    slot.busy = undefined;
    const elapsedMs = performance.now() - call.started;
    if (reply.error) call.resolve({ verdict: "error", error: reply.error, reason: reply.reason, elapsedMs });
    else call.resolve(reply.code === 0 ? { verdict: "allow", elapsedMs } : { verdict: "deny", reason: reply.reason, elapsedMs });
    this.pump();
  }

  /** Terminates a worker (watchdog or crash) and puts a fresh one with every module in its place. */
  private replace(slot: Slot, why: "timeout" | "crashed"): void {
    const at = this.slots.indexOf(slot);
    if (at < 0 || this.closed) return;
    this.restarts++;
    const busy = slot.busy;
    slot.busy = undefined;
    if (busy) {
      clearTimeout(busy.timer);
      busy.resolve({ verdict: "error", error: why, reason: `Wasm worker ${why}`, elapsedMs: performance.now() - busy.started });
    }
    for (const load of slot.pendingLoads.values()) load({ ok: false, reason: `worker ${why}` });
    slot.pendingLoads.clear();
    slot.worker.removeAllListeners();
    slot.worker.on("error", () => undefined);
    void slot.worker.terminate();
    this.slots[at] = this.spawn();
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const idle = this.slots.find((s) => s.ready && !s.busy);
      if (!idle) return;
      this.dispatch(idle, this.queue.shift()!);
    }
  }
}

/** A performance.now() instant as wall-clock ISO time. */
function isoAt(at: number): string {
  return new Date(Date.now() + (at - performance.now())).toISOString();
}
