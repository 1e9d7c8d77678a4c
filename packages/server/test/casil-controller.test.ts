import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { ArqonError, ErrorCode, MemoryKeyValueStore, jsonBytes, type Decision, type InspectionInput } from "@arqon/core";
import { CasilController, LayeredCasil, casilCommands, createCasilFromEnv, registerCasilMetrics, type CasilReloadEvent } from "../src/casil/index.js";
import type { CommandContext } from "../src/commands.js";

const DENY_WORD_WASM = fileURLToPath(new URL("../../../apps/examples/casil-wasm-policy/build/deny-word.wasm", import.meta.url));

const input = (payload: unknown, extra: Partial<InspectionInput> = {}): InspectionInput => ({ tenant: "acme", room: "lobby", path: "publish", payload: jsonBytes(payload), ...extra });
const big = { text: "b".repeat(200) };

async function rejection(p: Promise<unknown>): Promise<ArqonError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ArqonError);
  return err as ArqonError;
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 4000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

function ctx(admin: boolean, args: unknown, command = "op.casil.reload"): CommandContext {
  return {
    command,
    args,
    tenant: "acme",
    sub: admin ? "root" : "mallory",
    role: admin ? "admin" : undefined,
    admin,
    auth: { sub: admin ? "root" : "mallory", tenant: "acme", role: admin ? "admin" : undefined, admin, claims: {} },
    clientId: "c1",
    publish: () => Promise.reject(new Error("not used")),
    kv: undefined as never,
    logger: pino({ level: "silent" }),
    limits: undefined as never,
    chargeUsage: () => Promise.reject(new Error("not used")),
  };
}

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function controller(options: Parameters<typeof CasilController.create>[0] = {}): Promise<CasilController> {
  const c = await CasilController.create(options);
  cleanup.push(() => c.close());
  return c;
}

describe("casil controller", () => {
  it("reload - monitor to enforce takes effect on the next inspection, with a new version", async () => {
    const c = await controller({ policy: { mode: "monitor", maxPayloadBytes: 100 } });
    const events: CasilReloadEvent[] = [];
    c.onReload((e) => events.push(e));
    expect(c.version).toBe(1);
    expect(await c.inspect(input(big))).toMatchObject({ action: "allow", policyVersion: 1, flags: ["oversize_payload", "monitor_would_block"] });
    expect(await c.reload("mode: enforce\nmaxPayloadBytes: 100\n")).toEqual({ version: 2, previousVersion: 1 });
    expect(await c.inspect(input(big))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_OVERSIZE, policyVersion: 2 });
    expect(events).toEqual([{ version: 2, previousVersion: 1, document: { mode: "enforce", maxPayloadBytes: 100 }, source: "local" }]);
    expect(c.stats().decisions).toEqual(
      expect.arrayContaining([
        { tenant: "acme", mode: "monitor", decision: "block", reason: ErrorCode.CASIL_POLICY_OVERSIZE, count: 1 },
        { tenant: "acme", mode: "enforce", decision: "block", reason: ErrorCode.CASIL_POLICY_OVERSIZE, count: 1 },
      ]),
    );
  });

  it("reload - an invalid policy is a VALIDATION_ERROR and the old one stays active", async () => {
    const c = await controller({ policy: { mode: "enforce", maxPayloadBytes: 100 } });
    const bad: Array<[unknown, RegExp]> = [
      ["mode: strict", /\/mode: must be one of/],
      [{ patterns: [{ name: "evil", pattern: "(a)\\1" }] }, /backreferences are not allowed/],
      [{ redactionPaths: ["password"] }, /must start with "\$"/],
      [{ wasm: [{ name: "w", module: "does-not-exist.wasm" }] }, /cannot read .*does-not-exist.wasm: ENOENT/],
      [{ wasm: [{ name: "w" }] }, /"module" \(a \.wasm file\) is required/],
      ["{ broken", /not valid JSON or YAML/],
    ];
    for (const [policy, message] of bad) {
      const err = await rejection(c.reload(policy as string));
      expect(err.code).toBe(ErrorCode.VALIDATION_ERROR);
      expect(err.message).toMatch(message);
    }
    expect(c.version).toBe(1);
    expect(await c.inspect(input(big))).toMatchObject({ action: "block", policyVersion: 1 });
  });

  it("remote - applyRemote adopts only newer versions, and listeners see the source", async () => {
    const c = await controller({ policy: { mode: "monitor" } });
    const sources: string[] = [];
    c.onReload((e) => sources.push(`${e.source}@${e.version}`));
    expect(await c.applyRemote({ mode: "enforce", maxPayloadBytes: 10 }, 5)).toBe(true);
    expect(c.version).toBe(5);
    expect(await c.applyRemote({ mode: "monitor" }, 5)).toBe(false);
    expect(await c.applyRemote({ mode: "monitor" }, 3)).toBe(false);
    expect(await c.inspect(input(big))).toMatchObject({ action: "block", policyVersion: 5 });
    await c.reload({ mode: "monitor" });
    expect(sources).toEqual(["remote@5", "local@6"]);
  });

  it("watch - the policy file is loaded, reloaded on change, and a bad edit keeps the old policy", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "casil-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, "casil.yaml");
    copyFileSync(DENY_WORD_WASM, path.join(dir, "deny-word.wasm"));
    writeFileSync(file, "mode: monitor\n");
    const c = await controller({ debounceMs: 20, wasm: { budgetMs: 200 } });
    const stop = await c.watchFile(file);
    cleanup.push(stop);
    expect(c.version).toBe(2);
    expect(c.engine.settingsFor("acme").mode).toBe("monitor");
    writeFileSync(file, "mode: enforce\nwasm:\n  - name: deny-word\n    module: ./deny-word.wasm\n");
    await until(() => c.version === 3);
    expect(await c.inspect(input("forbidden"))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_WASM_DENY, policyVersion: 3 });
    writeFileSync(file, "mode: [broken\n");
    await new Promise((r) => setTimeout(r, 300));
    expect(c.version).toBe(3);
    expect(await c.inspect(input("forbidden"))).toMatchObject({ action: "block", policyVersion: 3 });
    writeFileSync(file, "mode: monitor\n");
    await until(() => c.version === 4);
    expect(await c.inspect(input("forbidden"))).toMatchObject({ action: "allow", policyVersion: 4 });
  });

  it("commands - op.casil.* are admin commands acting on the caller's layer; the baseline stays the operator's", async () => {
    const c = await controller({ policy: { mode: "monitor", patterns: [{ name: "operator-rule", pattern: "zzz" }] } });
    const layered = new LayeredCasil({ baseline: c, kv: new MemoryKeyValueStore() });
    cleanup.push(() => layered.close());
    const [get, reload] = casilCommands(layered);
    expect(get!.name).toBe("op.casil.get");
    expect([get!.options.access, reload!.options.access]).toEqual(["admin", "admin"]);
    expect(await reload!.handler(ctx(true, { policy: "patterns: [{ name: w, pattern: AKIA }]\n" }))).toMatchObject({ tenant: "acme", version: 1, previousVersion: 0 });
    expect(c.version).toBe(1);
    expect(await reload!.handler(ctx(true, { mode: "enforce" }))).toMatchObject({ version: 2, changes: ["mode: unset -> enforce"] });
    expect(await reload!.handler(ctx(true, { mode: "monitor", dryRun: true }))).toMatchObject({ dryRun: true, version: 3 });
    expect(layered.layerVersion("acme")).toBe(2);
    const invalid = await rejection(Promise.resolve().then(() => reload!.handler(ctx(true, { policy: { mode: "loud" } }))));
    expect(invalid.code).toBe(ErrorCode.VALIDATION_ERROR);
    const none = await rejection(Promise.resolve().then(() => reload!.handler(ctx(true, {}))));
    expect(none.code).toBe(ErrorCode.VALIDATION_ERROR);
    const two = await rejection(Promise.resolve().then(() => reload!.handler(ctx(true, { mode: "enforce", policy: {} }))));
    expect(two.code).toBe(ErrorCode.VALIDATION_ERROR);
    const view = (await get!.handler(ctx(true, undefined, "op.casil.get"))) as Record<string, unknown>;
    expect(JSON.stringify(view)).not.toContain("operator-rule");
    expect(view).toMatchObject({ baseline: { version: 1 }, layer: { version: 2 } });
  });

  it("env - off unless enabled or given a file; the env layer sits under the file; bad values are VALIDATION_ERROR", async () => {
    expect(await createCasilFromEnv({})).toBeUndefined();
    expect(await createCasilFromEnv({ ARQON_CASIL_ENABLED: "false", ARQON_CASIL_POLICY_FILE: "x.yaml" })).toBeUndefined();
    const dir = mkdtempSync(path.join(tmpdir(), "casil-env-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, "p.json");
    writeFileSync(file, JSON.stringify({ mode: "enforce" }));
    const c = await createCasilFromEnv({ ARQON_CASIL_POLICY_FILE: file, ARQON_CASIL_WATCH: "false", ARQON_CASIL_MODE: "monitor", ARQON_CASIL_MAX_PAYLOAD_BYTES: "64" });
    cleanup.push(() => c?.close());
    expect(c?.engine.settingsFor("acme")).toMatchObject({ mode: "enforce", maxPayloadBytes: 64 });
    expect(c?.version).toBe(1);
    const watched = await createCasilFromEnv({ ARQON_CASIL_POLICY_FILE: file });
    cleanup.push(() => watched?.close());
    expect(watched?.version).toBe(1);
    writeFileSync(file, JSON.stringify({ mode: "monitor" }));
    await until(() => watched?.version === 2);
    expect(watched?.engine.settingsFor("acme").mode).toBe("monitor");
    const envOnly = await createCasilFromEnv({ ARQON_CASIL_ENABLED: "1", ARQON_CASIL_MODE: "enforce", ARQON_CASIL_SCOPE_EXCLUDE: "lobby" });
    cleanup.push(() => envOnly?.close());
    expect(await envOnly!.inspect(input({ password: "x1" }))).toMatchObject({ action: "allow" });
    expect(await envOnly!.inspect(input({ password: "x1" }, { room: "other" }))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_SECRET });
    expect((await rejection(createCasilFromEnv({ ARQON_CASIL_ENABLED: "1", ARQON_CASIL_MODE: "loud" }))).code).toBe(ErrorCode.VALIDATION_ERROR);
    expect((await rejection(createCasilFromEnv({ ARQON_CASIL_POLICY_FILE: path.join(dir, "missing.yaml") }))).code).toBe(ErrorCode.VALIDATION_ERROR);
  });

  it("metrics - decisions by tenant, mode, decision and reason on the Prometheus registry", async () => {
    const c = await controller({ policy: { mode: "enforce", maxPayloadBytes: 100 } });
    const registry = new Registry();
    registerCasilMetrics(registry, c);
    await c.inspect(input(big));
    await c.inspect(input("ok"));
    await c.inspect(input("ok", { tenant: "beta" }));
    const text = await registry.metrics();
    expect(text).toContain(`arqon_casil_decisions_total{tenant="acme",mode="enforce",decision="block",reason="${ErrorCode.CASIL_POLICY_OVERSIZE}"} 1`);
    expect(text).toContain('arqon_casil_decisions_total{tenant="beta",mode="enforce",decision="allow",reason=""} 1');
    expect(text).toContain("arqon_casil_policy_version 1");
    const audit: unknown[] = [];
    const audited = await controller({ policy: { mode: "enforce", maxPayloadBytes: 100 }, audit: (r) => audit.push(r) });
    const d: Decision = await audited.inspect(input(big));
    expect(d.action).toBe("block");
    expect(audit).toEqual([expect.objectContaining({ event: "casil.block", enforced: true, reasonCode: ErrorCode.CASIL_POLICY_OVERSIZE, tenant: "acme", room: "lobby" })]);
  });
});
