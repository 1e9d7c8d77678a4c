import { describe, expect, it } from "vitest";
import { ArqonError, ErrorCode } from "../src/errors.js";
import { jsonBytes, parseJsonBytes, toBase64 } from "../src/codec/bytes.js";
import type { Decision, InspectionInput } from "../src/casil/types.js";
import {
  CasilTelemetry,
  MAX_LAYER_BYTES,
  casilLayerModules,
  casilLayerSpec,
  createCasilEngine,
  parseCasilLayer,
  validateCasilLayer,
  type CasilAuditRecord,
  type CasilWasmHost,
} from "../src/casil/index.js";

function input(payload: unknown, extra: Partial<InspectionInput> = {}): InspectionInput {
  return { tenant: "acme", room: "lobby", path: "publish", subject: "alice", payload: jsonBytes(payload), ...extra };
}

function sync(d: Decision | Promise<Decision>): Decision {
  if (d instanceof Promise) throw new Error("expected a synchronous decision");
  return d;
}

function refusal(fn: () => unknown): ArqonError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ArqonError);
    return err as ArqonError;
  }
  throw new Error("expected a refusal");
}

const AWS_KEY = "AKIAIOSFODNN7EXAMPLE";
/** Not a real module: layers only check base64 and size; the server's host checks the ABI. */
const FAKE_WASM = toBase64(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));

describe("casil enforce option", () => {
  it("casil enforce - a monitor policy decides as enforce for one call; telemetry and audit say enforce", () => {
    const audit: CasilAuditRecord[] = [];
    const telemetry = new CasilTelemetry();
    const engine = createCasilEngine({ policy: { mode: "monitor", transportRedaction: true, redactionPaths: ["$.password"] }, audit: (r) => audit.push(r), telemetry });
    const monitored = sync(engine.inspect(input({ text: AWS_KEY })));
    expect(monitored).toMatchObject({ action: "allow", flags: ["contains_probable_secret", "monitor_would_block"] });
    const enforced = sync(engine.inspect(input({ text: AWS_KEY }), { enforce: true }));
    expect(enforced).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_SECRET, policyVersion: 1 });
    expect(audit.map((r) => [r.mode, r.enforced])).toEqual([
      ["monitor", false],
      ["enforce", true],
    ]);
    const redacted = sync(engine.inspect(input({ password: "", name: "x" }), { enforce: true }));
    expect(redacted.action).toBe("redact");
    if (redacted.action === "redact") expect(parseJsonBytes(redacted.payload)).toEqual({ password: "[REDACTED]", name: "x" });
    expect(engine.stats().decisions).toEqual(
      expect.arrayContaining([
        { tenant: "acme", mode: "monitor", decision: "block", reason: ErrorCode.CASIL_POLICY_BLOCKED_SECRET, count: 1 },
        { tenant: "acme", mode: "enforce", decision: "block", reason: ErrorCode.CASIL_POLICY_BLOCKED_SECRET, count: 1 },
        { tenant: "acme", mode: "enforce", decision: "redact", reason: ErrorCode.CASIL_POLICY_REDACTED, count: 1 },
      ]),
    );
    const evaluation = engine.evaluate(input({ text: AWS_KEY }), { enforce: true });
    if (evaluation instanceof Promise) throw new Error("expected sync");
    expect(evaluation.mode).toBe("enforce");
    expect(evaluation.decision.action).toBe("block");
    // The option never loosens: an enforce policy stays enforce, and a clean payload gets the shared allow.
    const strict = createCasilEngine({ policy: { mode: "enforce" } });
    expect(sync(strict.inspect(input({ text: AWS_KEY }), { enforce: false })).action).toBe("block");
    expect(sync(engine.inspect(input({ text: "hi" }), { enforce: true }))).toBe(sync(engine.inspect(input({ text: "hi" }))));
  });

  it("casil enforce - the shadow policy is enforced alongside the live one", () => {
    const engine = createCasilEngine({ policy: { mode: "monitor", shadow: { maxPayloadBytes: 8 } } });
    const e = engine.evaluate(input({ text: "longer than eight" }), { enforce: true });
    if (e instanceof Promise) throw new Error("expected sync");
    expect(e.decision.action).toBe("allow");
    expect(e.shadow?.decision).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_OVERSIZE });
  });
});

describe("casil layer documents", () => {
  it("layer - refusals: inspection off, other tenants, shadow, host paths", () => {
    const off = refusal(() => validateCasilLayer({ enabled: false }, "acme"));
    expect([off.code, off.message]).toEqual([ErrorCode.AUTHORIZATION_ERROR, "a tenant layer cannot turn inspection off"]);
    const offInSection = refusal(() => validateCasilLayer({ tenants: { acme: { enabled: false } } }, "acme"));
    expect([offInSection.code, offInSection.message]).toEqual([ErrorCode.AUTHORIZATION_ERROR, "a tenant layer cannot turn inspection off"]);
    const other = refusal(() => validateCasilLayer({ tenants: { acme: { mode: "enforce" }, beta: { mode: "monitor" } } }, "acme"));
    expect([other.code, other.message]).toEqual([ErrorCode.AUTHORIZATION_ERROR, 'a tenant layer may only configure its own tenant ("acme")']);
    const shadow = refusal(() => validateCasilLayer({ shadow: { maxPayloadBytes: 1 } }, "acme"));
    expect([shadow.code, shadow.message]).toEqual([ErrorCode.VALIDATION_ERROR, "invalid CASIL policy: layer.shadow: a shadow policy is not supported in tenant layers"]);
    for (const module of ["./deny-word.wasm", "/etc/passwd", "/no/such/file.wasm"]) {
      const hostPath = refusal(() => validateCasilLayer({ wasm: [{ name: "w", module }] }, "acme"));
      expect([hostPath.code, hostPath.message]).toEqual([ErrorCode.AUTHORIZATION_ERROR, "host paths are operator-only; upload the module bytes as base64 in wasm[].wasm"]);
    }
  });

  it("layer - shape, regex safety, JSON paths, schemas, base64 and sizes are VALIDATION_ERROR naming the location", () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ mode: "enforce", colour: "red" }, /^invalid CASIL policy: layer: unknown field "colour"$/],
      [{ patterns: [{ name: "x", pattern: "a", action: "shout" }] }, /layer\.patterns\[0\]\.action: must be one of "block", "redact"/],
      [{ maxPayloadBytes: "big" }, /layer\.maxPayloadBytes: must be integer/],
      [{ patterns: [{ name: "evil", pattern: "(a)\\1" }] }, /layer\.patterns\[0\] \("evil"\): backreferences are not allowed/],
      [{ redactionPatterns: ["(x"] }, /layer\.redactionPatterns\[0\]: .*does not compile/],
      [{ redactionPaths: ["user.password"] }, /layer\.redactionPaths\[0\]/],
      [{ schemas: { "orders.*": { type: "thing" } } }, /layer\.schemas\["orders\.\*"\]/],
      [{ wasm: [{ name: "w", wasm: "not base64!" }] }, /layer\.wasm\[0\]\.wasm: not valid base64/],
      [{ wasm: [{ name: "w" }] }, /layer\.wasm\[0\]: must have required property 'wasm'/],
      [{ wasm: Array.from({ length: 9 }, (_, i) => ({ name: `w${i}`, wasm: FAKE_WASM })) }, /layer\.wasm: must NOT have more than 8 items/],
      [{ wasm: [{ name: "w", wasm: FAKE_WASM }, { name: "w", wasm: toBase64(new Uint8Array(9)) }] }, /Wasm policy "w" names two different modules/],
      [{ tenants: { acme: { colour: "red" } } }, /layer\.tenants\.acme: unknown field "colour"/],
      [[1, 2], /must be an object/],
    ];
    for (const [doc, message] of cases) {
      const err = refusal(() => validateCasilLayer(doc, "acme"));
      expect(err.code, JSON.stringify(doc).slice(0, 80)).toBe(ErrorCode.VALIDATION_ERROR);
      expect(err.message).toMatch(message);
    }
    const big = refusal(() => validateCasilLayer({ redactionPaths: Array.from({ length: 64 }, () => "$." + "a".repeat(250)), patterns: [{ name: "p", pattern: "x".repeat(MAX_LAYER_BYTES) }] }, "acme"));
    expect([big.code, big.message]).toEqual([ErrorCode.VALIDATION_ERROR, `invalid CASIL policy: layer: larger than ${MAX_LAYER_BYTES} bytes serialized as JSON`]);
    const bigText = refusal(() => parseCasilLayer(`mode: enforce\n#${"x".repeat(MAX_LAYER_BYTES)}`, "acme"));
    expect(bigText.code).toBe(ErrorCode.VALIDATION_ERROR);
    const module = toBase64(new Uint8Array(1025));
    const tooBig = refusal(() => validateCasilLayer({ wasm: [{ name: "w", wasm: module }] }, "acme", { maxWasmModuleBytes: 1024 }));
    expect(tooBig.message).toBe("invalid CASIL policy: layer.wasm[0].wasm: module of 1025 bytes exceeds the cap of 1024 bytes");
    expect(() => validateCasilLayer({ wasm: [{ name: "w", wasm: module }] }, "acme")).not.toThrow();
  });

  it("layer - normalized: a copy, enabled:true dropped, the caller's own section merged, YAML parsed, Wasm decoded", () => {
    const given = { enabled: true, mode: "monitor", patterns: [{ name: "p", pattern: "x" }], tenants: { acme: { mode: "enforce", scope: { exclude: ["debug.**"] } } } };
    const doc = validateCasilLayer(given, "acme");
    expect(doc).toEqual({ mode: "enforce", patterns: [{ name: "p", pattern: "x" }], scope: { exclude: ["debug.**"] } });
    expect(doc.patterns).not.toBe(given.patterns);
    const yaml = parseCasilLayer("mode: enforce\nwasm:\n  - { name: w, wasm: " + FAKE_WASM + ", rooms: [\"chat.**\"] }\n", "acme");
    expect(casilLayerSpec(yaml)).toEqual({ mode: "enforce", wasm: [{ name: "w", rooms: ["chat.**"] }] });
    expect(casilLayerModules(yaml)).toEqual([{ name: "w", bytes: new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]) }]);
    expect(parseCasilLayer("", "acme")).toEqual({});
    expect(refusal(() => parseCasilLayer("{ nope", "acme")).message).toMatch(/^invalid CASIL policy: layer: not valid JSON or YAML/);
  });
});

describe("casil layer engine", () => {
  const layerEngine = (policy: Record<string, unknown>, audit?: CasilAuditRecord[], wasm?: CasilWasmHost) =>
    createCasilEngine({ policy: casilLayerSpec(validateCasilLayer(policy, "acme")), layer: true, version: 4, audit: audit ? (r) => audit.push(r) : undefined, wasm, env: { ARQON_CASIL_MAX_PAYLOAD_BYTES: "1", ARQON_CASIL_ENABLED: "false" } });

  it("layer engine - the baseline's built-ins are skipped unless the layer sets them; env never applies", () => {
    const plain = layerEngine({ mode: "enforce" });
    expect(plain.enabled).toBe(true);
    expect(sync(plain.inspect(input({ text: AWS_KEY, pad: "x".repeat(2_000_000) })))).toMatchObject({ action: "allow" });
    const noScan = layerEngine({ mode: "enforce", blockOnProbableSecret: false, redactionPaths: ["$.x"], transportRedaction: true });
    expect(sync(noScan.inspect(input({ text: AWS_KEY })))).toBe(noScan.inspect(input({ text: "hi" })));
    const sized = layerEngine({ mode: "enforce", maxPayloadBytes: 16 });
    expect(sync(sized.inspect(input({ text: "more than sixteen bytes" })))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_OVERSIZE, policyVersion: 4 });
    expect(sync(sized.inspect(input({ text: AWS_KEY.slice(0, 4) })))).toMatchObject({ action: "allow" });
    const scan = layerEngine({ mode: "enforce", blockOnProbableSecret: true });
    expect(sync(scan.inspect(input({ text: AWS_KEY })))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_SECRET });
    expect(scan.settingsFor("acme").blockOnProbableSecret).toBe(true);
    expect(noScan.settingsFor("acme").blockOnProbableSecret).toBe(false);
  });

  it("layer engine - patterns, redactions, schemas and defaultDecision work as in a baseline; audit records say layer", () => {
    const audit: CasilAuditRecord[] = [];
    const engine = layerEngine(
      {
        mode: "enforce",
        transportRedaction: true,
        maxInspectBytes: 64,
        defaultDecision: "block",
        patterns: [{ name: "word", pattern: "forbidden", flags: "i" }],
        redactionPaths: ["$.card"],
        schemas: { "orders.*": { type: "object", required: ["sku"] } },
        neverLogPayloadFor: ["secret.**"],
        scope: { exclude: ["debug.**"] },
      },
      audit,
    );
    expect(sync(engine.inspect(input({ text: "a FORBIDDEN word" })))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_PATTERN, message: 'payload matches blocked pattern "word"' });
    const redacted = sync(engine.inspect(input({ card: "4111" })));
    expect(redacted).toMatchObject({ action: "redact", reasonCode: ErrorCode.CASIL_POLICY_REDACTED });
    expect(sync(engine.inspect(input({ qty: 1 }, { room: "orders.eu" })))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_SCHEMA });
    expect(sync(engine.inspect(input({ text: "y".repeat(100) })))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_DEFAULT_BLOCK });
    expect(sync(engine.inspect(input({ text: "forbidden" }, { room: "debug.x" })))).toMatchObject({ action: "allow" });
    expect(sync(engine.inspect(input({ text: "forbidden" }, { room: "secret.x" })))).toMatchObject({ action: "block" });
    expect(audit.map((r) => [r.event, r.layer, r.policyVersion])).toEqual([
      ["casil.block", true, 4],
      ["casil.redact", true, 4],
      ["casil.block", true, 4],
      ["casil.block", true, 4],
      ["casil.block", true, 4],
    ]);
    expect(audit[4]).toMatchObject({ payloadOmitted: true });
    expect(audit[4]!.payload).toBeUndefined();
  });

  it("layer engine - a layer policy cannot carry enabled, tenants or shadow", () => {
    for (const policy of [{ enabled: false }, { tenants: { acme: {} } }, { shadow: {} }]) {
      const err = refusal(() => createCasilEngine({ policy, layer: true }));
      expect(err.code).toBe(ErrorCode.VALIDATION_ERROR);
      expect(err.message).toMatch(/is not allowed in a tenant layer/);
    }
  });

  it("layer engine - Wasm rules run through the host given; errors fail closed with the host's reason as a flag", async () => {
    const host: CasilWasmHost = {
      has: (name) => name === "w",
      evaluate: async (_name, payload) => (new TextDecoder().decode(payload).includes("slow") ? { verdict: "error", error: "rate_limited" } : { verdict: "allow" }),
    };
    const engine = layerEngine({ mode: "enforce", wasm: [{ name: "w", wasm: FAKE_WASM }] }, undefined, host);
    expect(await engine.inspect(input("fine"))).toMatchObject({ action: "allow" });
    expect(await engine.inspect(input("slow"))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_INTERNAL_ERROR, flags: ["wasm_error", "wasm_rate_limited"] });
  });
});
