import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { afterEach, describe, expect, it } from "vitest";
import {
  ArqonError,
  ErrorCode,
  MemoryKeyValueStore,
  jsonBytes,
  parseJsonBytes,
  toBase64,
  utf8Encode,
  type CasilAuditRecord,
  type CasilPolicyDocument,
  type Decision,
  type InspectionInput,
  type KeyValueStore,
} from "@arqon/core";
import { CASIL_LAYER_NAMESPACE, CasilController, LayeredCasil, WasmPolicyHost, type LayeredCasilOptions } from "../src/casil/index.js";
import { openEmbeddedStorage } from "../src/storage/index.js";
import { ALLOW, DENY_WORD_WASM, LOOP_FOREVER, policyModule } from "./casil-wasm-modules.js";

const DENY_WORD = toBase64(new Uint8Array(readFileSync(DENY_WORD_WASM)));
const LOOP = toBase64(policyModule({ memory: { min: 1, max: 1 }, inspect: LOOP_FOREVER }));
const ALLOW_ALL = toBase64(policyModule({ memory: { min: 1, max: 1 }, inspect: ALLOW }));
const AWS_KEY = "AKIAIOSFODNN7EXAMPLE";

const input = (tenant: string, payload: unknown, extra: Partial<InspectionInput> = {}): InspectionInput => ({ tenant, room: "chat.general", path: "publish", subject: "u", payload: jsonBytes(payload), ...extra });

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<ArqonError> {
  const err = await (typeof p === "function" ? Promise.resolve().then(p) : p).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ArqonError);
  return err as ArqonError;
}

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function layered(policy: CasilPolicyDocument, kv: KeyValueStore, options: Partial<LayeredCasilOptions> = {}): Promise<LayeredCasil> {
  const baseline = await CasilController.create({ policy });
  const l = new LayeredCasil({ baseline, kv, ...options });
  cleanup.push(() => l.close());
  await l.load();
  return l;
}

async function storedOf(kv: KeyValueStore, tenant: string): Promise<{ revision: number; version: number } | undefined> {
  const entry = await kv.get(CASIL_LAYER_NAMESPACE, tenant);
  return entry && { revision: entry.revision, version: (parseJsonBytes(entry.value) as { version: number }).version };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** A memory store whose next `gets` reads all return before any resolves, so concurrent writers read one revision. */
class BarrierKv extends MemoryKeyValueStore {
  conflicts = 0;
  private waiting: Array<() => void> = [];
  private hold = 0;

  holdNextReads(count: number): void {
    this.hold = count;
  }

  override async get(namespace: string, key: string) {
    const entry = await super.get(namespace, key);
    if (this.hold > 0) {
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        if (this.waiting.length >= this.hold) {
          this.hold = 0;
          for (const w of this.waiting.splice(0)) w();
        }
      });
    }
    return entry;
  }

  override async put(namespace: string, key: string, value: Uint8Array, options?: { ifRevision?: number }) {
    try {
      return await super.put(namespace, key, value, options);
    } catch (err) {
      if ((err as ArqonError).code === ErrorCode.CONFLICT) this.conflicts++;
      throw err;
    }
  }
}

describe("casil layers", () => {
  it("layers - tenant A's layer enforces and blocks a word (pattern and real Wasm); tenant B keeps receiving it", async () => {
    const audit: CasilAuditRecord[] = [];
    const casil = await layered({ mode: "monitor" }, new MemoryKeyValueStore(), { audit: (r) => audit.push(r) });
    const changes: Array<[string, number]> = [];
    const result = await casil.setLayer(
      "acme",
      { mode: "enforce", patterns: [{ name: "word", pattern: "forbidden", flags: "i" }], wasm: [{ name: "deny-word", wasm: DENY_WORD, rooms: ["wasm.**"] }] },
      { by: "alice" },
    );
    expect(result).toEqual({ valid: true, dryRun: false, tenant: "acme", version: 1, previousVersion: 0, changes: ["layer created", "mode: unset -> enforce", "patterns: +1", "wasm: +1"] });
    expect(await casil.inspect(input("acme", { text: "a FORBIDDEN word" }))).toMatchObject({
      action: "block",
      reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_PATTERN,
      policyVersion: 1,
      layerVersion: 1,
    });
    // The real AssemblyScript module, in acme's own worker pool.
    expect(await casil.inspect(input("acme", "forbidden", { room: "wasm.x" }))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_PATTERN });
    await casil.setLayer("acme", { mode: "enforce", wasm: [{ name: "deny-word", wasm: DENY_WORD, rooms: ["wasm.**"] }] }, { by: "alice" });
    expect(await casil.inspect(input("acme", "forbidden fruit", { room: "wasm.x" }))).toMatchObject({
      action: "block",
      reasonCode: ErrorCode.CASIL_WASM_DENY,
      message: "deny-word: payload contains a forbidden word",
      layerVersion: 2,
    });
    expect(await casil.inspect(input("acme", "fine", { room: "wasm.x" }))).toEqual({ action: "allow", policyVersion: 1, layerVersion: 2 });
    // Beta has no layer: exactly the baseline's decision (the shared frozen allow).
    const betaAllow = await casil.inspect(input("beta", "forbidden fruit", { room: "wasm.x" }));
    expect(betaAllow).toBe(await casil.baseline.inspect(input("beta", "hello")));
    expect(betaAllow).toEqual({ action: "allow", policyVersion: 1 });
    expect(audit.filter((r) => r.layer).map((r) => [r.tenant, r.reasonCode, r.mode, r.policyVersion])).toEqual([
      ["acme", ErrorCode.CASIL_POLICY_BLOCKED_PATTERN, "enforce", 1],
      ["acme", ErrorCode.CASIL_POLICY_BLOCKED_PATTERN, "enforce", 1],
      ["acme", ErrorCode.CASIL_WASM_DENY, "enforce", 2],
    ]);
    // Acme cannot switch the baseline off nor reach beta.
    const off = await rejection(casil.setLayer("acme", { enabled: false }));
    expect([off.code, off.message]).toEqual([ErrorCode.AUTHORIZATION_ERROR, "a tenant layer cannot turn inspection off"]);
    const other = await rejection(casil.setLayer("acme", { tenants: { beta: { mode: "enforce", patterns: [{ name: "x", pattern: "hello" }] } } }));
    expect([other.code, other.message]).toEqual([ErrorCode.AUTHORIZATION_ERROR, 'a tenant layer may only configure its own tenant ("acme")']);
    expect(casil.layerVersion("acme")).toBe(2);
    expect(casil.layerVersion("beta")).toBeUndefined();
    expect(await casil.inspect(input("beta", "hello"))).toEqual({ action: "allow", policyVersion: 1 });
    expect(casil.layerStats().find((s) => s.tenant === "acme")?.stats.wasm).toEqual(expect.arrayContaining([{ policy: "deny-word", outcome: "deny", count: 1 }]));
    void changes;
  });

  it("layers - {mode: enforce} makes acme's baseline checks enforce while beta stays in monitor; monitor never loosens an enforce baseline", async () => {
    const changes: Array<[string, number]> = [];
    const casil = await layered({ mode: "monitor" }, new MemoryKeyValueStore(), { onChange: (t, v) => changes.push([t, v]) });
    expect(await casil.inspect(input("acme", { text: AWS_KEY }))).toMatchObject({ action: "allow", flags: ["contains_probable_secret", "monitor_would_block"] });
    const patched = await casil.patchLayer("acme", { mode: "enforce" }, { by: "alice" });
    expect(patched).toMatchObject({ version: 1, changes: ["layer created", "mode: unset -> enforce"] });
    expect(await casil.inspect(input("acme", { text: AWS_KEY }))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_SECRET, layerVersion: 1 });
    expect(await casil.inspect(input("beta", { text: AWS_KEY }))).toMatchObject({ action: "allow", flags: ["contains_probable_secret", "monitor_would_block"] });
    expect(casil.describe("acme").effectiveMode).toEqual({ baseline: "enforce", layer: "enforce" });
    expect(casil.describe("beta").effectiveMode).toEqual({ baseline: "monitor", layer: null });
    expect((await casil.patchLayer("acme", { mode: "monitor" })).changes).toEqual(["mode: enforce -> monitor"]);
    expect(await casil.inspect(input("acme", { text: AWS_KEY }))).toMatchObject({ action: "allow", flags: ["contains_probable_secret", "monitor_would_block"], layerVersion: 2 });
    expect(changes).toEqual([
      ["acme", 1],
      ["acme", 2],
    ]);
    expect((await rejection(casil.patchLayer("acme", { mode: "off" as never }))).code).toBe(ErrorCode.VALIDATION_ERROR);
    expect((await rejection(casil.patchLayer("acme", { enabled: false } as never))).message).toMatch(/may only set "mode"/);

    const strict = await layered({ mode: "enforce", transportRedaction: true, redactionPaths: ["$.pin"] }, new MemoryKeyValueStore());
    await strict.setLayer("acme", { mode: "monitor", patterns: [{ name: "word", pattern: "forbidden" }] });
    expect(await strict.inspect(input("acme", { text: AWS_KEY }))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_SECRET, layerVersion: 1 });
    expect(await strict.inspect(input("acme", { text: "forbidden" }))).toMatchObject({ action: "allow", flags: ["matched_pattern", "monitor_would_block"] });
    // A baseline redaction is what the layer sees; both redactions reach the subscriber; the stricter action wins.
    await strict.setLayer("acme", { mode: "enforce", transportRedaction: true, redactionPaths: ["$.ssn"], patterns: [{ name: "pw", pattern: "hunter2" }] });
    const both = await strict.inspect(input("acme", { pin: "hunter2", ssn: "123", text: "hi" }));
    expect(both).toMatchObject({ action: "redact", reasonCode: ErrorCode.CASIL_POLICY_REDACTED, flags: ["redacted"], layerVersion: 2 });
    expect(parseJsonBytes((both as Extract<Decision, { action: "redact" }>).payload)).toEqual({ pin: "[REDACTED]", ssn: "[REDACTED]", text: "hi" });
    const baselineOnly = await strict.inspect(input("acme", { pin: "x", text: "hi" }));
    expect(parseJsonBytes((baselineOnly as Extract<Decision, { action: "redact" }>).payload)).toEqual({ pin: "[REDACTED]", text: "hi" });
    expect(await strict.inspect(input("acme", { text: "hunter2" }))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_PATTERN });
  });

  it("layers - describe shows a tenant only the baseline's public part and its own layer; the operator sees every layer", async () => {
    const casil = await layered(
      { mode: "monitor", maxPayloadBytes: 4096, patterns: [{ name: "internal-rule", pattern: "zzz" }], schemas: { "secret-schema.*": true }, tenants: { secretco: { mode: "enforce" }, acme: { maxInspectBytes: 1024 } } },
      new MemoryKeyValueStore(),
    );
    await casil.setLayer("acme", { mode: "enforce", wasm: [{ name: "deny-word", wasm: DENY_WORD }] }, { by: "alice" });
    await casil.setLayer("beta", { patterns: [{ name: "beta-rule", pattern: "b" }] }, { by: "bob" });
    const view = casil.describe("acme");
    expect(view).toMatchObject({
      tenant: "acme",
      baseline: { version: 1, enabled: true, mode: "monitor", maxPayloadBytes: 4096, maxInspectBytes: 1024 },
      layer: { version: 1, updatedBy: "alice", mode: "enforce" },
      effectiveMode: { baseline: "enforce", layer: "enforce" },
    });
    const wasmBytes = readFileSync(DENY_WORD_WASM);
    const { createHash } = await import("node:crypto");
    expect((view.layer!.document as { wasm: unknown[] }).wasm).toEqual([{ name: "deny-word", wasm: { bytes: wasmBytes.length, sha256: createHash("sha256").update(wasmBytes).digest("hex") } }]);
    const text = JSON.stringify(view);
    for (const hidden of ["internal-rule", "secret-schema", "secretco", "beta", DENY_WORD.slice(0, 40)]) expect(text).not.toContain(hidden);
    expect(casil.describe("gamma").layer).toBeNull();
    const operator = casil.describeBaseline();
    expect(operator).toMatchObject({ version: 1, document: { tenants: { secretco: { mode: "enforce" } } } });
    expect(operator.layers).toEqual([
      { tenant: "acme", version: 1, mode: "enforce", wasm: ["deny-word"], updatedAt: expect.any(String), updatedBy: "alice" },
      { tenant: "beta", version: 1, mode: "monitor", wasm: [], updatedAt: expect.any(String), updatedBy: "bob" },
    ]);
  });

  it("layers - invalid layers are refused and change nothing; host paths get one answer whether they exist or not; dry run changes nothing", async () => {
    const kv = new MemoryKeyValueStore();
    const casil = await layered({ mode: "monitor" }, kv);
    await casil.setLayer("acme", { mode: "monitor", patterns: [{ name: "word", pattern: "forbidden" }] });
    const before = { stored: await storedOf(kv, "acme"), view: JSON.stringify(casil.describe("acme")) };
    const attempts: Array<[unknown, string, RegExp | string]> = [
      [{ patterns: [{ name: "evil", pattern: "(a)\\1" }] }, ErrorCode.VALIDATION_ERROR, /layer\.patterns\[0\] \("evil"\): backreferences/],
      [{ patterns: [{ name: "big", pattern: "x" }], redactionPatterns: ["y".repeat(800 * 1024)] }, ErrorCode.VALIDATION_ERROR, /larger than 786432 bytes/],
      [`mode: enforce\n# ${"z".repeat(800 * 1024)}`, ErrorCode.VALIDATION_ERROR, /text is larger than 786432 bytes/],
      [{ mode: "enforce", colour: "red" }, ErrorCode.VALIDATION_ERROR, 'invalid CASIL policy: layer: unknown field "colour"'],
      [{ tenants: { beta: {} } }, ErrorCode.AUTHORIZATION_ERROR, 'a tenant layer may only configure its own tenant ("acme")'],
      [{ enabled: false }, ErrorCode.AUTHORIZATION_ERROR, "a tenant layer cannot turn inspection off"],
      [{ shadow: { mode: "enforce" } }, ErrorCode.VALIDATION_ERROR, /shadow policy is not supported/],
      [{ wasm: [{ name: "w", wasm: toBase64(utf8Encode("not wasm")) }] }, ErrorCode.VALIDATION_ERROR, 'Wasm policy "w": not a WebAssembly module'],
      [{ wasm: [{ name: "w", wasm: toBase64(policyModule({ memory: { min: 1, max: 65 }, inspect: ALLOW })) }] }, ErrorCode.VALIDATION_ERROR, /exceeds the cap of 64 pages/],
      [42, ErrorCode.VALIDATION_ERROR, /must be a document object or JSON\/YAML text/],
    ];
    const hostPaths: ArqonError[] = [];
    for (const module of [DENY_WORD_WASM, path.join(path.dirname(DENY_WORD_WASM), "missing.wasm")]) {
      hostPaths.push(await rejection(casil.setLayer("acme", { wasm: [{ name: "w", module }] })));
    }
    expect(hostPaths.map((e) => [e.code, e.message])).toEqual([
      [ErrorCode.AUTHORIZATION_ERROR, "host paths are operator-only; upload the module bytes as base64 in wasm[].wasm"],
      [ErrorCode.AUTHORIZATION_ERROR, "host paths are operator-only; upload the module bytes as base64 in wasm[].wasm"],
    ]);
    expect(JSON.stringify(hostPaths[0]!.detail)).toBe(JSON.stringify(hostPaths[1]!.detail));
    for (const [layer, code, message] of attempts) {
      const err = await rejection(casil.setLayer("acme", layer));
      expect(err.code, String(message)).toBe(code);
      if (typeof message === "string") expect(err.message).toBe(message);
      else expect(err.message).toMatch(message);
    }
    expect(await storedOf(kv, "acme")).toEqual(before.stored);
    expect(JSON.stringify(casil.describe("acme"))).toBe(before.view);
    expect(casil.summaries().map((s) => s.wasm)).toEqual([[]]);
    expect(await casil.inspect(input("acme", "forbidden"))).toMatchObject({ action: "allow", flags: ["matched_pattern", "monitor_would_block"], layerVersion: 1 });
    expect((await rejection(casil.setLayer("Not a tenant!", {}))).code).toBe(ErrorCode.TENANT_INVALID);

    const dry = await casil.setLayer("acme", { mode: "enforce", patterns: [{ name: "word", pattern: "forbidden" }, { name: "other", pattern: "x" }], wasm: [{ name: "ok", wasm: ALLOW_ALL }] }, { dryRun: true });
    expect(dry).toEqual({ valid: true, dryRun: true, tenant: "acme", version: 2, previousVersion: 1, changes: ["mode: monitor -> enforce", "patterns: +1", "wasm: +1"] });
    expect(await storedOf(kv, "acme")).toEqual(before.stored);
    expect(JSON.stringify(casil.describe("acme"))).toBe(before.view);
    expect((await casil.clearLayer("acme", { dryRun: true })).changes).toEqual(["layer removed"]);
    expect(casil.layerVersion("acme")).toBe(1);
    const conflict = await rejection(casil.setLayer("acme", { mode: "enforce" }, { ifVersion: 7 }));
    expect([conflict.code, conflict.message]).toEqual([ErrorCode.CONFLICT, 'the CASIL layer of tenant "acme" is at version 1, not 7']);
  });

  it("layers - Wasm tenants are capped per server, module size follows the tenant's budget, replaced and cleared pools close", async () => {
    const casil = await layered({}, new MemoryKeyValueStore(), { maxWasmTenants: 1, budgetFor: (t) => (t === "tiny" ? { maxModuleBytes: 64 } : undefined) });
    await casil.setLayer("acme", { wasm: [{ name: "ok", wasm: ALLOW_ALL }] });
    const full = await rejection(casil.setLayer("beta", { wasm: [{ name: "ok", wasm: ALLOW_ALL }] }));
    expect([full.code, full.message]).toEqual([ErrorCode.VALIDATION_ERROR, "invalid CASIL policy: layer.wasm: this server runs Wasm layers for at most 1 tenants, and that many have one"]);
    expect((await rejection(casil.setLayer("beta", { wasm: [{ name: "ok", wasm: ALLOW_ALL }] }, { dryRun: true }))).message).toMatch(/at most 1 tenants/);
    await casil.setLayer("beta", { mode: "enforce" });
    // Acme may replace its own Wasm layer; the old pool closes once its calls had their budget.
    const oldHost = (casil as unknown as { layers: Map<string, { host?: WasmPolicyHost }> }).layers.get("acme")!.host!;
    await casil.setLayer("acme", { wasm: [{ name: "ok2", wasm: ALLOW_ALL }] });
    await expect.poll(async () => (await oldHost.evaluate("ok", jsonBytes(1))).error, { timeout: 3000 }).toBe("unavailable");
    expect(await casil.inspect(input("acme", "x"))).toMatchObject({ action: "allow", layerVersion: 2 });
    const newHost = (casil as unknown as { layers: Map<string, { host?: WasmPolicyHost }> }).layers.get("acme")!.host!;
    await casil.clearLayer("acme");
    await expect.poll(async () => (await newHost.evaluate("ok2", jsonBytes(1))).error, { timeout: 3000 }).toBe("unavailable");
    expect(await casil.inspect(input("acme", "x"))).toEqual({ action: "allow", policyVersion: 1 });
    await casil.setLayer("beta", { wasm: [{ name: "ok", wasm: ALLOW_ALL }] });
    const tiny = await rejection(casil.setLayer("tiny", { wasm: [{ name: "ok", wasm: DENY_WORD }] }));
    expect(tiny.message).toMatch(/^invalid CASIL policy: layer\.wasm\[0\]\.wasm: module of \d+ bytes exceeds the cap of 64 bytes$/);
  });

  it("layers - persist through a KeyValueStore: a new LayeredCasil on the same memory store and on LMDB after reopening", async () => {
    const kv = new MemoryKeyValueStore();
    const first = await layered({}, kv);
    await first.setLayer("acme", { mode: "enforce", wasm: [{ name: "deny-word", wasm: DENY_WORD }] }, { by: "alice" });
    await first.setLayer("beta", "mode: enforce\npatterns:\n  - { name: w, pattern: nope }\n");
    await first.setLayer("gone", { mode: "enforce" });
    await first.clearLayer("gone");
    await first.close();
    const second = await layered({}, kv);
    expect(second.summaries().map((s) => [s.tenant, s.version, s.wasm])).toEqual([
      ["acme", 1, ["deny-word"]],
      ["beta", 1, []],
    ]);
    expect(await second.inspect(input("acme", "forbidden"))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_WASM_DENY });
    expect(await second.inspect(input("beta", "nope"))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_PATTERN });
    // A cleared layer keeps counting versions (a tombstone), so versions only grow.
    expect(await storedOf(kv, "gone")).toMatchObject({ version: 2 });
    expect((await second.setLayer("gone", {})).version).toBe(3);

    const dir = mkdtempSync(path.join(tmpdir(), "arqon-casil-layers-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    let storage = await openEmbeddedStorage({ path: dir });
    const a = await layered({}, storage.kv);
    await a.setLayer("acme", { mode: "enforce", patterns: [{ name: "word", pattern: "forbidden" }] }, { by: "alice" });
    await a.patchLayer("acme", { mode: "monitor" });
    await a.close();
    await storage.close();
    storage = await openEmbeddedStorage({ path: dir });
    cleanup.push(() => storage.close());
    const b = await layered({}, storage.kv);
    expect(b.describe("acme").layer).toMatchObject({ version: 2, updatedBy: "unknown", mode: "monitor", document: { mode: "monitor", patterns: [{ name: "word", pattern: "forbidden" }] } });
    expect(await b.inspect(input("acme", "forbidden"))).toMatchObject({ action: "allow", flags: ["matched_pattern", "monitor_would_block"], layerVersion: 2 });
  });

  it("layers - compare-and-set between two instances on one store: no lost update, versions only grow, refresh adopts", async () => {
    for (const kind of ["memory", "lmdb"] as const) {
      let kv: KeyValueStore & { conflicts?: number; holdNextReads?: (n: number) => void };
      if (kind === "memory") kv = new BarrierKv();
      else {
        const dir = mkdtempSync(path.join(tmpdir(), "arqon-casil-cas-"));
        const storage = await openEmbeddedStorage({ path: dir });
        cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
        cleanup.push(() => storage.close());
        kv = storage.kv;
      }
      const one = await layered({}, kv);
      const two = await layered({}, kv);
      await one.setLayer("acme", { mode: "monitor" });
      expect((await two.patchLayer("acme", { mode: "enforce" })).version).toBe(2);
      // one's active layer is still version 1; its write starts from the stored version 2.
      const third = await one.setLayer("acme", { mode: "monitor", patterns: [{ name: "p", pattern: "x" }] });
      expect(third).toMatchObject({ version: 3, previousVersion: 2, changes: ["mode: enforce -> monitor", "patterns: +1"] });
      expect(two.layerVersion("acme")).toBe(2);
      expect(await two.refresh("acme")).toEqual({ changed: true, version: 3 });
      expect(await two.refresh("acme")).toEqual({ changed: false, version: 3 });
      // Concurrent writers that read the same revision: one wins, the other retries from the fresh version.
      kv.holdNextReads?.(2);
      const [x, y] = await Promise.all([one.patchLayer("acme", { mode: "enforce" }), two.setLayer("acme", { mode: "monitor", redactionPaths: ["$.a"] })]);
      expect([x.version, y.version].sort()).toEqual([4, 5]);
      if (kind === "memory") expect(kv.conflicts).toBe(1);
      const final = await storedOf(kv, "acme");
      expect(final?.version).toBe(5);
      await one.refresh("acme");
      await two.refresh("acme");
      expect([one.layerVersion("acme"), two.layerVersion("acme")]).toEqual([5, 5]);
      // The later write applied on top of the earlier one: a patch keeps the other writer's fields.
      const doc = one.describe("acme").layer!.document as Record<string, unknown>;
      if (x.version === 5) expect(doc).toEqual({ mode: "enforce", redactionPaths: ["$.a"] });
      else expect(doc).toEqual({ mode: "monitor", redactionPaths: ["$.a"] });
      await one.clearLayer("acme");
      expect(await two.refresh("acme")).toEqual({ changed: true, version: 0 });
      expect(await two.inspect(input("acme", "x"))).toEqual({ action: "allow", policyVersion: 1 });
    }
  });

  it("layers - a stored layer that cannot be activated fails its tenant closed until it is replaced or cleared", async () => {
    const kv = new MemoryKeyValueStore();
    await kv.put(CASIL_LAYER_NAMESPACE, "acme", utf8Encode("{ not json"));
    await kv.put(CASIL_LAYER_NAMESPACE, "beta", jsonBytes({ version: 3, document: { enabled: false }, updatedAt: "", updatedBy: "x" }));
    const casil = await layered({}, kv);
    expect(casil.summaries().map((s) => [s.tenant, s.error !== undefined])).toEqual([
      ["acme", true],
      ["beta", true],
    ]);
    const err = await rejection(() => casil.inspect(input("beta", "hi")));
    expect(err.code).toBe(ErrorCode.CASIL_INTERNAL_ERROR);
    expect(err.message).toBe('the CASIL layer of tenant "beta" (version 3) is not active: a tenant layer cannot turn inspection off');
    expect(casil.describe("beta").layer).toMatchObject({ version: 3, error: "a tenant layer cannot turn inspection off" });
    expect(await casil.inspect(input("gamma", "hi"))).toEqual({ action: "allow", policyVersion: 1 });
    expect((await casil.setLayer("beta", { mode: "enforce" })).version).toBe(4);
    expect(await casil.inspect(input("beta", "hi"))).toMatchObject({ action: "allow", layerVersion: 4 });
    await casil.clearLayer("acme");
    expect(await casil.inspect(input("acme", "hi"))).toEqual({ action: "allow", policyVersion: 1 });
  });

  it("layers - Wasm budgets: acme's looping policy times out at acme's budget while beta's own policy keeps its latency", async () => {
    const budgetMs = 60;
    const casil = await layered({}, new MemoryKeyValueStore(), {
      budgetFor: (t) => (t === "acme" ? { budgetMs, callsPerSecond: 100_000 } : { budgetMs: 2000 }),
    });
    await casil.setLayer("acme", { mode: "enforce", wasm: [{ name: "spin", wasm: LOOP }] });
    await casil.setLayer("beta", { mode: "enforce", wasm: [{ name: "deny-word", wasm: DENY_WORD }] });
    // Beta publishes steadily for a while (a call every ~2 ms), once with acme idle and once while acme is hammered.
    const betaFor = async (ms: number): Promise<number[]> => {
      const times: number[] = [];
      const end = performance.now() + ms;
      for (let i = 0; performance.now() < end; i++) {
        const t0 = performance.now();
        const decision = await casil.inspect(input("beta", i % 5 === 0 ? "forbidden" : { i, text: "hello" }));
        times.push(performance.now() - t0);
        expect(decision.action).toBe(i % 5 === 0 ? "block" : "allow");
        if (decision.action === "block") expect(decision.reasonCode).toBe(ErrorCode.CASIL_WASM_DENY);
        await new Promise((r) => setTimeout(r, 2));
      }
      return times;
    };
    await betaFor(200);
    const idle = median(await betaFor(800));

    let hammering = true;
    const acmeDecisions: Decision[] = [];
    const hammer = async (): Promise<void> => {
      while (hammering) {
        acmeDecisions.push(await casil.inspect(input("acme", { text: "spin" })));
        // Once the breaker is open the answers come at once: yield so the loop is not a microtask spin.
        await new Promise((r) => setImmediate(r));
      }
    };
    const hammers = [hammer(), hammer(), hammer()];
    const busyTimes = await betaFor(1500);
    const busy = median(busyTimes);
    hammering = false;
    await Promise.all(hammers);

    // Three timeouts in a row open acme's breaker: every later call fails closed at once, without a worker respawn.
    const timeouts = acmeDecisions.filter((d) => d.flags?.includes("wasm_timeout")).length;
    expect(timeouts).toBeGreaterThanOrEqual(3);
    expect(timeouts).toBeLessThanOrEqual(5);
    expect(acmeDecisions.filter((d) => d.flags?.includes("wasm_disabled")).length).toBeGreaterThan(100);
    for (const d of acmeDecisions) expect(d).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_INTERNAL_ERROR });
    expect(casil.describe("acme").layer?.wasmBreakers).toEqual([expect.objectContaining({ policy: "spin", state: "open", trips: 1 })]);
    expect(casil.describe("beta").layer?.wasmBreakers).toEqual([]);
    const detail = `beta median idle ${idle.toFixed(2)} ms, while acme loops ${busy.toFixed(2)} ms over ${busyTimes.length} calls; acme budget ${budgetMs} ms`;
    expect(busy, detail).toBeLessThan(budgetMs);
    expect(busy, detail).toBeLessThan(Math.max(idle * 30, 20));
  });

  it("layers - calls beyond a tenant's calls/s budget fail closed at once (wasm_rate_limited), other tenants unaffected", async () => {
    const casil = await layered({}, new MemoryKeyValueStore(), { budgetFor: (t) => (t === "acme" ? { callsPerSecond: 5, budgetMs: 500 } : { budgetMs: 500 }) });
    await casil.setLayer("acme", { mode: "enforce", wasm: [{ name: "ok", wasm: ALLOW_ALL }] });
    await casil.setLayer("beta", { mode: "enforce", wasm: [{ name: "ok", wasm: ALLOW_ALL }] });
    const t0 = performance.now();
    const decisions = await Promise.all(Array.from({ length: 30 }, (_, i) => casil.inspect(input("acme", { i }))));
    const limited = decisions.filter((d) => d.action === "block");
    expect(decisions.filter((d) => d.action === "allow").length).toBeLessThanOrEqual(6);
    expect(limited.length).toBeGreaterThanOrEqual(24);
    for (const d of limited) expect(d).toMatchObject({ reasonCode: ErrorCode.CASIL_INTERNAL_ERROR, flags: ["wasm_error", "wasm_rate_limited"] });
    expect(performance.now() - t0).toBeLessThan(2000);
    const beta = await Promise.all(Array.from({ length: 30 }, (_, i) => casil.inspect(input("beta", { i }))));
    expect(beta.every((d) => d.action === "allow")).toBe(true);
    expect(casil.layerStats().find((s) => s.tenant === "acme")!.stats.wasm).toEqual(expect.arrayContaining([{ policy: "ok", outcome: "rate_limited", count: limited.length }]));
  });

  it("layers - close closes every pool and the baseline; later writes are refused, Wasm inspections fail closed", async () => {
    const casil = await layered({}, new MemoryKeyValueStore());
    await casil.setLayer("acme", { mode: "enforce", wasm: [{ name: "ok", wasm: ALLOW_ALL }] });
    expect(await casil.inspect(input("acme", "x"))).toMatchObject({ action: "allow" });
    await casil.close();
    expect(await casil.inspect(input("acme", "x"))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_INTERNAL_ERROR, flags: ["wasm_error", "wasm_unavailable"] });
    expect((await rejection(casil.setLayer("acme", {}))).code).toBe(ErrorCode.SHUTTING_DOWN);
    expect((await rejection(casil.baseline.reload({}))).message).toBe("CASIL controller is closed");
  });
});
