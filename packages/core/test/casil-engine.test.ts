import { describe, expect, it } from "vitest";
import { ArqonError, ErrorCode } from "../src/errors.js";
import { jsonBytes, parseJsonBytes, utf8Encode } from "../src/codec/bytes.js";
import type { Decision, InspectionInput } from "../src/casil/types.js";
import {
  CasilTelemetry,
  casilConfigFromEnv,
  createCasilEngine,
  parseCasilPolicy,
  splitPatternList,
  type CasilAuditRecord,
  type CasilPolicyDocument,
  type CasilShadowDifference,
  type CasilWasmHost,
} from "../src/casil/index.js";

function input(payload: unknown, extra: Partial<InspectionInput> = {}): InspectionInput {
  return { tenant: "acme", room: "lobby", path: "publish", subject: "alice", payload: jsonBytes(payload), ...extra };
}

function sync(d: Decision | Promise<Decision>): Decision {
  if (d instanceof Promise) throw new Error("expected a synchronous decision");
  return d;
}

function expectValidation(fn: () => unknown, message: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ArqonError);
    expect((err as ArqonError).code).toBe(ErrorCode.VALIDATION_ERROR);
    expect((err as ArqonError).message).toMatch(message);
    return;
  }
  throw new Error("expected a VALIDATION_ERROR");
}

const enforce = (doc: CasilPolicyDocument = {}, audit?: CasilAuditRecord[]) =>
  createCasilEngine({ policy: { mode: "enforce", ...doc }, audit: audit ? (r) => audit.push(r) : undefined });

describe("casil config", () => {
  it("casil env - every earlier variable is read, lists are split, bad values name the variable", () => {
    const doc = casilConfigFromEnv({
      ARQON_CASIL_ENABLED: "true",
      ARQON_CASIL_MODE: "ENFORCE",
      ARQON_CASIL_DEFAULT_DECISION: "block",
      ARQON_CASIL_SCOPE_INCLUDE: "chat.*, orders.**",
      ARQON_CASIL_SCOPE_EXCLUDE: "chat.debug",
      ARQON_CASIL_MAX_INSPECT_BYTES: "4096",
      ARQON_CASIL_MAX_PAYLOAD_BYTES: "65536",
      ARQON_CASIL_BLOCK_ON_PROBABLE_SECRET: "0",
      ARQON_CASIL_REDACTION_PATHS: "$.user.password,$..token",
      ARQON_CASIL_REDACTION_PATTERNS: "\\d{3}-\\d{2,4},ssn:[0-9]+",
      ARQON_CASIL_TRANSPORT_REDACTION: "yes",
      ARQON_CASIL_NEVER_LOG_PAYLOAD_FOR: "medical.**",
      UNRELATED: "x",
    });
    expect(doc).toEqual({
      enabled: true,
      mode: "enforce",
      defaultDecision: "block",
      scope: { include: ["chat.*", "orders.**"], exclude: ["chat.debug"] },
      maxInspectBytes: 4096,
      maxPayloadBytes: 65536,
      blockOnProbableSecret: false,
      redactionPaths: ["$.user.password", "$..token"],
      redactionPatterns: ["\\d{3}-\\d{2,4}", "ssn:[0-9]+"],
      transportRedaction: true,
      neverLogPayloadFor: ["medical.**"],
    });
    expect(casilConfigFromEnv({})).toEqual({});
    expect(splitPatternList('["a,b", "c"]')).toEqual(["a,b", "c"]);
    expect(splitPatternList("a\\,b,[x,y]z")).toEqual(["a,b", "[x,y]z"]);
    expectValidation(() => casilConfigFromEnv({ ARQON_CASIL_MODE: "audit" }), /ARQON_CASIL_MODE must be one of monitor, enforce/);
    expectValidation(() => casilConfigFromEnv({ ARQON_CASIL_ENABLED: "maybe" }), /ARQON_CASIL_ENABLED must be true or false/);
    expectValidation(() => casilConfigFromEnv({ ARQON_CASIL_MAX_PAYLOAD_BYTES: "-5" }), /ARQON_CASIL_MAX_PAYLOAD_BYTES must be a positive integer/);
  });

  it("casil document - JSON and YAML parse to the same document; shape errors are VALIDATION_ERROR with the location", () => {
    const yaml = parseCasilPolicy("mode: enforce\nmaxPayloadBytes: 100\ntenants:\n  beta:\n    mode: monitor\n");
    expect(yaml).toEqual(parseCasilPolicy('{"mode":"enforce","maxPayloadBytes":100,"tenants":{"beta":{"mode":"monitor"}}}'));
    expectValidation(() => parseCasilPolicy("mode: enforce\nmaxPayloadByte: 100\n"), /unknown field "maxPayloadByte"/);
    expectValidation(() => parseCasilPolicy('{"mode":"strict"}'), /\/mode: must be one of "monitor", "enforce"/);
    expectValidation(() => parseCasilPolicy("{not json"), /not valid JSON or YAML/);
    expectValidation(() => parseCasilPolicy("mode: [unclosed"), /not valid JSON or YAML/);
    expectValidation(() => createCasilEngine({ policy: { redactionPaths: ["user.password"] } }), /redactionPaths\[0\]: path "user.password" must start with "\$"/);
    expectValidation(() => createCasilEngine({ policy: { schemas: { "orders.*": { type: "objekt" } } } }), /schemas\["orders.\*"\]/);
    expectValidation(() => createCasilEngine({ policy: { wasm: [{ name: "x" }] } }), /needs a Wasm host/);
    const tooMany = Array.from({ length: 33 }, (_, i) => ({ name: `p${i}`, pattern: `w${i}` }));
    expectValidation(() => createCasilEngine({ policy: { patterns: tooMany } }), /\/patterns: must NOT have more than 32 items/);
  });

  it("casil patterns - nested quantifiers load (the engine is linear); backreferences, lookaheads, bad flags and compile errors are refused", () => {
    for (const bad of ["(x)\\1", "(?<q>x)\\k<q>", "a(?=b)", "a(?!b)"]) {
      expectValidation(() => createCasilEngine({ policy: { patterns: [{ name: "bad", pattern: bad }] } }), /patterns\[0\] \("bad"\): (backreferences|lookaheads)/);
    }
    expectValidation(() => createCasilEngine({ policy: { redactionPatterns: ["(ab"] } }), /does not compile/);
    expectValidation(() => createCasilEngine({ policy: { patterns: [{ name: "g", pattern: "x", flags: "g" }] } }), /flags "g" are not allowed/);
    for (const ok of ["(a+)+", "(a*)*b", "(?:\\w+\\s?)*$", "(a|a)*", "\\bdrop\\s+table\\b", "(?:foo|bar)+", "[a-z]+@[a-z]+\\.com", "a{2,5}b?", "(ab)?c*", "\\p{L}{3,}"]) {
      expect(() => createCasilEngine({ policy: { patterns: [{ name: "ok", pattern: ok, flags: ok.includes("\\p") ? "u" : "" }] } })).not.toThrow();
    }
    // A nested-quantifier pattern against its classic attack input answers at once.
    const engine = createCasilEngine({ policy: { mode: "enforce", patterns: [{ name: "evil", pattern: "^(a+)+$" }] } });
    const started = performance.now();
    expect(sync(engine.inspect(input("a".repeat(30_000) + "!")))).toMatchObject({ action: "allow" });
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe("casil engine", () => {
  it("casil scope - include and exclude globs, exclude wins, out-of-scope content is allowed untouched", () => {
    const engine = enforce({ maxPayloadBytes: 10, scope: { include: ["chat.*", "orders.**"], exclude: ["chat.debug"] } });
    const big = { text: "x".repeat(50) };
    expect(sync(engine.inspect(input(big, { room: "chat.main" })))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_OVERSIZE });
    expect(sync(engine.inspect(input(big, { room: "orders.eu.1" })))).toMatchObject({ action: "block" });
    expect(sync(engine.inspect(input(big, { room: "chat.debug" })))).toMatchObject({ action: "allow" });
    expect(sync(engine.inspect(input(big, { room: "lobby" })))).toMatchObject({ action: "allow" });
    expect(sync(engine.inspect(input(big, { room: undefined, path: "command", command: "op.x.y" })))).toMatchObject({ action: "allow" });
    const pathsOnly = enforce({ maxPayloadBytes: 10, paths: ["presence"] });
    expect(sync(pathsOnly.inspect(input(big)))).toMatchObject({ action: "allow" });
    expect(sync(pathsOnly.inspect(input(big, { path: "presence" })))).toMatchObject({ action: "block" });
  });

  it("casil oversize - blocked in enforce; in monitor traffic is unchanged and the would-be block is recorded", () => {
    const audit: CasilAuditRecord[] = [];
    const telemetry = new CasilTelemetry();
    const monitor = createCasilEngine({ policy: { mode: "monitor", maxPayloadBytes: 16 }, audit: (r) => audit.push(r), telemetry, version: 3 });
    const big = input({ text: "y".repeat(40) });
    const d = sync(monitor.inspect(big));
    expect(d).toEqual({ action: "allow", flags: ["oversize_payload", "monitor_would_block"], policyVersion: 3 });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ event: "casil.block", enforced: false, mode: "monitor", reasonCode: ErrorCode.CASIL_POLICY_OVERSIZE, tenant: "acme", room: "lobby", path: "publish", subject: "alice", bytes: big.payload.length, policyVersion: 3 });
    const enforcing = createCasilEngine({ policy: { mode: "enforce", maxPayloadBytes: 16 }, telemetry, version: 4 });
    expect(sync(enforcing.inspect(big))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_OVERSIZE, message: `payload of ${big.payload.length} bytes exceeds the policy limit of 16`, policyVersion: 4 });
    expect(sync(enforcing.inspect(input("ok")))).toEqual({ action: "allow", policyVersion: 4 });
    expect(telemetry.snapshot().decisions).toEqual(
      expect.arrayContaining([
        { tenant: "acme", mode: "monitor", decision: "block", reason: ErrorCode.CASIL_POLICY_OVERSIZE, count: 1 },
        { tenant: "acme", mode: "enforce", decision: "block", reason: ErrorCode.CASIL_POLICY_OVERSIZE, count: 1 },
        { tenant: "acme", mode: "enforce", decision: "allow", reason: "", count: 1 },
      ]),
    );
  });

  it("casil secrets - keys, tokens, password fields, private keys and Luhn-valid cards are blocked; look-alikes pass", () => {
    const audit: CasilAuditRecord[] = [];
    const engine = enforce({}, audit);
    const secrets: Array<[string, unknown]> = [
      ["aws_access_key", { key: "AKIAIOSFODNN7EXAMPLE" }],
      ["aws_secret_key", { aws_secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" }],
      ["github_token", { t: "ghp_" + "a1B2c3D4e5".repeat(4) }],
      ["slack_token", "xoxb-123456789012-abcdefABCDEF"],
      ["jwt", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"],
      ["private_key", "-----BEGIN RSA PRIVATE KEY-----\nMIIE..."],
      ["password_field", { user: "bob", password: "hunter2" }],
      ["password_field", "login?user=bob&password=hunter2"],
      ["card_number", { card: "4111 1111 1111 1111" }],
      ["card_number", "pay with 5555-5555-5555-4444 now"],
    ];
    for (const [kind, payload] of secrets) {
      const d = sync(engine.inspect(input(payload)));
      expect(d, kind).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_SECRET, message: `payload contains a probable secret (${kind})` });
      expect(d.flags).toContain("contains_probable_secret");
    }
    const clean: unknown[] = [
      { card: "4111 1111 1111 1112" }, // Luhn fails
      { ts: 1763790000000, id: 4111111111111111n.toString().slice(0, 12) },
      { password: "" },
      "AKIA-not-a-key",
      { text: "the word password in prose is fine" },
    ];
    for (const payload of clean) expect(sync(engine.inspect(input(payload))), JSON.stringify(payload)).toMatchObject({ action: "allow" });
    expect(audit.find((a) => a.flags.includes("contains_private_key"))).toMatchObject({ risk: "critical" });
    // Audit excerpts never carry the secret itself.
    for (const a of audit) {
      expect(a.payload).not.toContain("hunter2");
      expect(a.payload).not.toContain("AKIAIOSFODNN7EXAMPLE");
      expect(a.payload).not.toContain("4111 1111 1111 1111");
    }
  });

  it("casil redaction - JSON paths and patterns; transport redaction on changes the payload, off only the audit record", () => {
    const doc: CasilPolicyDocument = { redactionPaths: ["$.user.password", "$..token", "$.cards[0]"], redactionPatterns: ["\\b\\d{3}-\\d{2}-\\d{4}\\b"] };
    const payload = { user: { name: "bob", password: "pw1" }, nested: [{ token: "t1" }, { deep: { token: "t2" } }], cards: ["c0", "c1"], note: "ssn 123-45-6789 ok" };
    const redacted = { user: { name: "bob", password: "[REDACTED]" }, nested: [{ token: "[REDACTED]" }, { deep: { token: "[REDACTED]" } }], cards: ["[REDACTED]", "c1"], note: "ssn [REDACTED] ok" };

    const onAudit: CasilAuditRecord[] = [];
    const on = enforce({ ...doc, transportRedaction: true, blockOnProbableSecret: false }, onAudit);
    const d = sync(on.inspect(input(payload)));
    expect(d.action).toBe("redact");
    if (d.action !== "redact") return;
    expect(d.reasonCode).toBe(ErrorCode.CASIL_POLICY_REDACTED);
    expect(parseJsonBytes(d.payload)).toEqual(redacted);
    expect(onAudit[0]).toMatchObject({ event: "casil.redact", enforced: true });

    const offAudit: CasilAuditRecord[] = [];
    const off = enforce({ ...doc, transportRedaction: false, blockOnProbableSecret: false }, offAudit);
    const original = input(payload);
    const d2 = sync(off.inspect(original));
    expect(d2).toMatchObject({ action: "allow" });
    expect(d2.flags).toContain("redacted_in_logs");
    expect(offAudit[0]).toMatchObject({ event: "casil.redact", enforced: false, reasonCode: ErrorCode.CASIL_POLICY_REDACTED });
    expect(JSON.parse(offAudit[0]!.payload!)).toEqual(redacted);

    // Monitor never changes traffic, redaction included.
    const monitor = createCasilEngine({ policy: { ...doc, mode: "monitor", transportRedaction: true, blockOnProbableSecret: false } });
    const md = sync(monitor.inspect(input(payload)));
    expect(md.action).toBe("allow");
    expect(md.flags).toEqual(["contains_probable_secret", "redacted", "monitor_would_redact"]);

    // Secrets not blocked are masked (field names and token shapes), keeping the JSON valid.
    const masking = enforce({ blockOnProbableSecret: false, transportRedaction: true });
    const m = sync(masking.inspect(input({ password: "hunter2", note: "key AKIAIOSFODNN7EXAMPLE here", ok: 1 })));
    expect(m.action).toBe("redact");
    if (m.action === "redact") expect(parseJsonBytes(m.payload)).toEqual({ password: "[REDACTED]", note: "key [REDACTED] here", ok: 1 });
  });

  it("casil patterns - a custom block pattern blocks with its name; only the first maxInspectBytes are scanned", () => {
    const engine = enforce({ patterns: [{ name: "sql", pattern: "drop\\s+table", flags: "i" }], maxInspectBytes: 64 });
    expect(sync(engine.inspect(input("please DROP  TABLE users")))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_PATTERN, message: 'payload matches blocked pattern "sql"' });
    const late = input("x".repeat(100) + " drop table users");
    // Enforce with no defaultDecision blocks what it could not read in full (a secret after padding never passes).
    expect(sync(engine.inspect(late))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_DEFAULT_BLOCK, flags: ["partially_inspected"] });
    const lenient = enforce({ patterns: [{ name: "sql", pattern: "drop\\s+table", flags: "i" }], maxInspectBytes: 64, defaultDecision: "allow" });
    expect(sync(lenient.inspect(late))).toMatchObject({ action: "allow", flags: ["partially_inspected"] });
    const strict = enforce({ maxInspectBytes: 64, defaultDecision: "block" });
    expect(sync(strict.inspect(late))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_DEFAULT_BLOCK });
    expect(sync(strict.inspect(input("short")))).toMatchObject({ action: "allow" });
  });

  it("casil schema-typed rooms - publishes must match the room's schema; other paths and rooms are free", () => {
    const engine = enforce({
      schemas: { "orders.*": { type: "object", required: ["sku", "qty"], properties: { sku: { type: "string" }, qty: { type: "integer", minimum: 1 } }, additionalProperties: false } },
    });
    expect(sync(engine.inspect(input({ sku: "a", qty: 2 }, { room: "orders.eu" })))).toMatchObject({ action: "allow" });
    expect(sync(engine.inspect(input({ sku: "a", qty: 0 }, { room: "orders.eu" })))).toMatchObject({
      action: "block",
      reasonCode: ErrorCode.CASIL_POLICY_SCHEMA,
      message: 'room "orders.eu" is schema-typed: /qty must be >= 1',
    });
    expect(sync(engine.inspect(input({ sku: "a" }, { room: "orders.eu", path: "server_publish" })))).toMatchObject({ reasonCode: ErrorCode.CASIL_POLICY_SCHEMA });
    expect(sync(engine.inspect(input({ any: 1 }, { room: "orders.eu", path: "state" })))).toMatchObject({ action: "allow" });
    expect(sync(engine.inspect(input({ any: 1 }, { room: "lobby" })))).toMatchObject({ action: "allow" });
  });

  it("casil tenants - a tenant's policy overrides the global one field by field; others fall back to global", () => {
    const engine = createCasilEngine({ policy: { mode: "enforce", maxPayloadBytes: 20, tenants: { beta: { mode: "monitor" }, gamma: { maxPayloadBytes: 1000 } } } });
    const big = { text: "z".repeat(30) };
    expect(sync(engine.inspect(input(big)))).toMatchObject({ action: "block" });
    expect(sync(engine.inspect(input(big, { tenant: "beta" })))).toMatchObject({ action: "allow", flags: ["oversize_payload", "monitor_would_block"] });
    expect(sync(engine.inspect(input(big, { tenant: "gamma" })))).toMatchObject({ action: "allow" });
    expect(engine.settingsFor("gamma")).toMatchObject({ mode: "enforce", maxPayloadBytes: 1000 });
    expect(engine.settingsFor("unknown")).toMatchObject({ mode: "enforce", maxPayloadBytes: 20 });
  });

  it("casil env and document - the document wins over env, except the ENABLED=false kill switch", () => {
    const env = { ARQON_CASIL_MODE: "monitor", ARQON_CASIL_MAX_PAYLOAD_BYTES: "10" };
    const engine = createCasilEngine({ env, policy: { mode: "enforce" } });
    expect(engine.settingsFor("acme")).toMatchObject({ mode: "enforce", maxPayloadBytes: 10 });
    expect(sync(engine.inspect(input("x".repeat(20))))).toMatchObject({ action: "block" });
    const off = createCasilEngine({ env: { ARQON_CASIL_ENABLED: "false" }, policy: { enabled: true, mode: "enforce", maxPayloadBytes: 1 } });
    expect(off.enabled).toBe(false);
    expect(sync(off.inspect(input("x".repeat(20))))).toMatchObject({ action: "allow" });
  });

  it("casil shadow - a shadow policy never changes traffic and reports where it differs", () => {
    const diffs: CasilShadowDifference[] = [];
    const engine = createCasilEngine({ policy: { mode: "monitor", maxPayloadBytes: 1000, shadow: { mode: "enforce", maxPayloadBytes: 20 } }, onShadowDifference: (d) => diffs.push(d) });
    const big = input({ text: "q".repeat(40) });
    expect(sync(engine.inspect(big))).toMatchObject({ action: "allow" });
    expect(diffs).toEqual([{ tenant: "acme", room: "lobby", path: "publish", live: { action: "allow" }, shadow: { action: "block", reasonCode: ErrorCode.CASIL_POLICY_OVERSIZE } }]);
    const e = engine.evaluate(input("small"));
    if (e instanceof Promise) throw new Error("expected sync");
    expect(e.shadow).toMatchObject({ differs: false });
    expect(diffs).toHaveLength(1);
    expect(engine.stats().shadowDifferences).toEqual([{ tenant: "acme", count: 1 }]);
  });

  it("casil telemetry - decision and shadow counters keep their first maxTenants tenants by name, the rest under _other", () => {
    const telemetry = new CasilTelemetry({ maxTenants: 2 });
    for (const tenant of ["a", "b", "c", "d", "a"]) {
      telemetry.recordShadowDifference(tenant);
      telemetry.recordAllow(tenant, "enforce");
    }
    const stats = telemetry.snapshot();
    expect(stats.shadowDifferences).toEqual([{ tenant: "a", count: 2 }, { tenant: "b", count: 1 }, { tenant: "_other", count: 2 }]);
    expect(stats.decisions.map((d) => [d.tenant, d.count])).toEqual([["a", 2], ["b", 1], ["_other", 2]]);
  });

  it("casil audit - NEVER_LOG_PAYLOAD_FOR omits the payload; other rooms get a masked excerpt", () => {
    const audit: CasilAuditRecord[] = [];
    const engine = enforce({ neverLogPayloadFor: ["medical.**"], patterns: [{ name: "bad", pattern: "badword" }] }, audit);
    sync(engine.inspect(input({ diagnosis: "badword" }, { room: "medical.ward.3" })));
    sync(engine.inspect(input({ note: "badword" }, { room: "lobby" })));
    expect(audit[0]).toMatchObject({ room: "medical.ward.3", payloadOmitted: true, reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_PATTERN });
    expect(audit[0]).not.toHaveProperty("payload");
    expect(audit[1]).toMatchObject({ room: "lobby", payload: '{"note":"badword"}' });
  });

  it("casil commands - op.casil.* arguments are only size-checked so a policy can carry its own patterns", () => {
    const engine = enforce({ patterns: [{ name: "bad", pattern: "badword" }], maxPayloadBytes: 200 });
    const args = { policy: { patterns: [{ name: "bad", pattern: "badword" }] } };
    expect(sync(engine.inspect(input(args, { path: "command", command: "op.casil.reload", room: undefined })))).toMatchObject({ action: "allow" });
    expect(sync(engine.inspect(input(args, { path: "command", command: "op.store.put", room: undefined })))).toMatchObject({ action: "block" });
    expect(sync(engine.inspect(input({ p: "x".repeat(300) }, { path: "command", command: "op.casil.reload" })))).toMatchObject({ reasonCode: ErrorCode.CASIL_POLICY_OVERSIZE });
  });

  it("casil wasm - host verdicts map to allow, CASIL_WASM_DENY, and fail-closed CASIL_INTERNAL_ERROR", async () => {
    const calls: string[] = [];
    const host: CasilWasmHost = {
      has: (name) => name === "words",
      async evaluate(name, payload) {
        calls.push(name);
        const text = new TextDecoder().decode(payload);
        if (text.includes("trap")) return { verdict: "error", error: "trap" };
        return text.includes("nope") ? { verdict: "deny", reason: "said nope" } : { verdict: "allow" };
      },
    };
    expectValidation(() => createCasilEngine({ policy: { wasm: [{ name: "other" }] }, wasm: host }), /Wasm policy "other" is not loaded/);
    const engine = createCasilEngine({ policy: { mode: "enforce", wasm: [{ name: "words", rooms: ["chat.*"] }] }, wasm: host });
    expect(sync(engine.inspect(input("nope", { room: "lobby" })))).toMatchObject({ action: "allow" });
    expect(await engine.inspect(input("fine", { room: "chat.a" }))).toMatchObject({ action: "allow" });
    expect(await engine.inspect(input("nope", { room: "chat.a" }))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_WASM_DENY, message: "words: said nope" });
    expect(await engine.inspect(input("trap", { room: "chat.a" }))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_INTERNAL_ERROR, flags: ["wasm_error", "wasm_trap"] });
    expect(calls).toHaveLength(3);
    expect(engine.stats().wasm).toEqual(expect.arrayContaining([{ policy: "words", outcome: "deny", count: 1 }, { policy: "words", outcome: "trap", count: 1 }]));
  });

  it("casil disabled and binary - disabled allows everything; binary payloads are scanned but never rewritten", () => {
    const off = createCasilEngine({ policy: { enabled: false, mode: "enforce", maxPayloadBytes: 1 } });
    expect(sync(off.inspect(input("anything")))).toMatchObject({ action: "allow" });
    const engine = enforce({ redactionPatterns: ["abc"], transportRedaction: true });
    const bin = { ...input(null), payload: utf8Encode("abc AKIAIOSFODNN7EXAMPLE"), payloadFormat: "binary" as const };
    expect(sync(engine.inspect(bin))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_SECRET });
    expect(sync(engine.inspect({ ...bin, payload: utf8Encode("abc") }))).toMatchObject({ action: "allow", flags: ["redaction_skipped_binary"] });
  });
});
