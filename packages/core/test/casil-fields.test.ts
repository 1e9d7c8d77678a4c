import { describe, expect, it } from "vitest";
import { ErrorCode } from "../src/errors.js";
import { jsonBytes, parseJsonBytes, utf8Encode } from "../src/codec/bytes.js";
import type { Decision, InspectionInput } from "../src/casil/types.js";
import { createCasilEngine, findSecrets, parseJsonPath, redactPath, type CasilPolicyDocument } from "../src/casil/index.js";

// Issue 21's red-team pass: content moved out of the payload, encoded, split into arrays or hidden behind padding
// must still be seen; a trusted command argument must not be.

const AWS_KEY = "AKIAIOSFODNN7EXAMPLE";
const GH_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8";

function input(payload: unknown, extra: Partial<InspectionInput> = {}): InspectionInput {
  return { tenant: "acme", room: "lobby", path: "publish", subject: "alice", payload: jsonBytes(payload), ...extra };
}

function sync(d: Decision | Promise<Decision>): Decision {
  if (d instanceof Promise) throw new Error("expected a synchronous decision");
  return d;
}

const enforce = (doc: CasilPolicyDocument = {}) => createCasilEngine({ policy: { mode: "enforce", ...doc } });

describe("casil fields beside the payload", () => {
  it("fields - a secret or a blocked word in a header name, header value, room name or state key is blocked", () => {
    const engine = enforce({ blockOnProbableSecret: true, patterns: [{ name: "sql", pattern: "drop\\s+table", flags: "i" }] });
    const clean = { text: "hello" };
    const cases: Array<[Partial<InspectionInput>, string, RegExp]> = [
      [{ headers: { "x-note": `key ${AWS_KEY}` } }, ErrorCode.CASIL_POLICY_BLOCKED_SECRET, /header "x-note" contains a probable secret \(aws_access_key\)/],
      [{ headers: { [GH_TOKEN]: "1" } }, ErrorCode.CASIL_POLICY_BLOCKED_SECRET, /header name/],
      [{ headers: { "x-api-key": "s3cr3t-value-1234" } }, ErrorCode.CASIL_POLICY_BLOCKED_SECRET, /header "x-api-key"/],
      [{ headers: { "x-q": "please DROP TABLE users" } }, ErrorCode.CASIL_POLICY_BLOCKED_PATTERN, /header "x-q" matches blocked pattern "sql"/],
      [{ room: `leak.${AWS_KEY}` }, ErrorCode.CASIL_POLICY_BLOCKED_SECRET, /room name "leak\.AKIA/],
      [{ path: "state", stateKey: `drop table ${"x"}` }, ErrorCode.CASIL_POLICY_BLOCKED_PATTERN, /state key matches blocked pattern "sql"/],
    ];
    for (const [extra, code, message] of cases) {
      const d = sync(engine.inspect(input(clean, extra)));
      expect(d, JSON.stringify(extra)).toMatchObject({ action: "block", reasonCode: code });
      if (d.action === "block") expect(d.message).toMatch(message);
    }
    // Ordinary headers, rooms and keys pass; the same room is answered from the room cache the second time.
    expect(sync(engine.inspect(input(clean, { headers: { "x-trace": "abc", "content-type": "json" }, room: "chat.main" })))).toMatchObject({ action: "allow" });
    expect(sync(engine.inspect(input(clean, { room: `leak.${AWS_KEY}` })))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_SECRET });
  });

  it("fields - each field can be switched off per policy; monitor records the would-be block without changing traffic", () => {
    const off = enforce({ blockOnProbableSecret: true, fields: { headers: false, room: false, stateKeys: false } });
    expect(sync(off.inspect(input({}, { headers: { "x-note": AWS_KEY }, room: `r.${AWS_KEY}` })))).toMatchObject({ action: "allow" });
    expect(sync(off.inspect(input({}, { path: "state", stateKey: AWS_KEY })))).toMatchObject({ action: "allow" });
    const onlyHeaders = enforce({ blockOnProbableSecret: true, fields: { room: false } });
    expect(sync(onlyHeaders.inspect(input({}, { room: `r.${AWS_KEY}` })))).toMatchObject({ action: "allow" });
    expect(sync(onlyHeaders.inspect(input({}, { headers: { "x-note": AWS_KEY } })))).toMatchObject({ action: "block" });
    const monitor = createCasilEngine({ policy: { mode: "monitor", blockOnProbableSecret: true } });
    const d = sync(monitor.inspect(input({}, { headers: { "x-note": AWS_KEY } })));
    expect(d.action).toBe("allow");
    expect(d.flags).toContain("monitor_would_block");
  });

  it("fields - a header that only matches a redaction rule cannot be rewritten, so transport redaction blocks it", () => {
    const engine = enforce({ blockOnProbableSecret: false, transportRedaction: true, redactionPatterns: ["\\d{3}-\\d{4}"] });
    const d = sync(engine.inspect(input({ text: "ok" }, { headers: { "x-phone": "555-1234" } })));
    expect(d).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_PATTERN });
    if (d.action === "block") expect(d.message).toMatch(/cannot be redacted/);
  });
});

describe("casil secrets that hide", () => {
  it("secrets - base64-encoded tokens and array-valued password fields are found", () => {
    const encoded = Buffer.from(`token=${GH_TOKEN}`).toString("base64");
    const hits = findSecrets(`payload ${encoded} end`);
    expect(hits.map((h) => h.kind)).toContain("github_token");
    expect(hits.some((h) => h.encoded)).toBe(true);
    const engine = enforce({ blockOnProbableSecret: true });
    const d = sync(engine.inspect(input({ blob: encoded })));
    expect(d).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_SECRET });
    expect(d.flags).toContain("encoded_secret");
    expect(sync(engine.inspect(input({ password: ["hunter2-but-longer"] })))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_SECRET });
    // Base64 that decodes to ordinary text, and short runs, pass.
    expect(sync(engine.inspect(input({ blob: Buffer.from("just an ordinary sentence, nothing to see").toString("base64") })))).toMatchObject({ action: "allow" });
    expect(findSecrets("aGVsbG8=")).toEqual([]);
  });

  it("secrets - a secret after padding past maxInspectBytes never passes enforce unless the policy says allow", () => {
    const padded = input({ pad: "x".repeat(70_000), key: AWS_KEY });
    expect(sync(enforce({ blockOnProbableSecret: true }).inspect(padded))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_DEFAULT_BLOCK, flags: ["partially_inspected"] });
    expect(sync(enforce({ blockOnProbableSecret: true, defaultDecision: "allow" }).inspect(padded))).toMatchObject({ action: "allow", flags: ["partially_inspected"] });
    expect(sync(createCasilEngine({ policy: { mode: "monitor", blockOnProbableSecret: true } }).inspect(padded)).action).toBe("allow");
  });
});

describe("casil trusted command fields", () => {
  it("trusted fields - a command's designated secret argument is not inspected and survives redaction unchanged", () => {
    const engine = enforce({ blockOnProbableSecret: true });
    const args = { url: "https://hooks.example.com/in", secret: "whsec_" + Buffer.from("k".repeat(32)).toString("base64") };
    const command = (extra: Partial<InspectionInput>) => input(args, { path: "command", command: "op.webhook.register", ...extra });
    // Without the registration's trusted list the secret is blocked, as it would be from any client.
    expect(sync(engine.inspect(command({})))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_SECRET });
    expect(sync(engine.inspect(command({ trustedFields: ["secret"] })))).toMatchObject({ action: "allow" });
    // The other arguments are still inspected.
    const leaky = input({ ...args, note: AWS_KEY }, { path: "command", command: "op.webhook.register", trustedFields: ["secret"] });
    expect(sync(engine.inspect(leaky))).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_SECRET });
    // Redaction rewrites the rest and puts the trusted value back as it was.
    const masking = enforce({ blockOnProbableSecret: false, transportRedaction: true, redactionPaths: ["$.note"] });
    const d = sync(masking.inspect(input({ ...args, note: "private" }, { path: "command", command: "op.webhook.register", trustedFields: ["secret"] })));
    expect(d.action).toBe("redact");
    if (d.action === "redact") expect(parseJsonBytes(d.payload)).toEqual({ ...args, note: "[REDACTED]" });
    // Trusted fields mean nothing on a publish.
    expect(sync(engine.inspect(input(args, { trustedFields: ["secret"] })))).toMatchObject({ action: "block" });
  });
});

describe("casil time budget", () => {
  it("budget - an inspection that runs past timeBudgetMs fails closed with CASIL_INTERNAL_ERROR", () => {
    let now = 0;
    // Every clock read advances 10 ms: the second check after the start is past a 15 ms budget.
    const clock = () => (now += 10);
    const engine = createCasilEngine({ policy: { mode: "enforce", blockOnProbableSecret: true, patterns: [{ name: "a", pattern: "zz" }, { name: "b", pattern: "yy" }] }, clock, timeBudgetMs: 15 });
    const d = sync(engine.inspect(input({ text: "hello" })));
    expect(d).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_INTERNAL_ERROR });
    expect(d.flags).toContain("inspect_budget_exceeded");
    const roomy = createCasilEngine({ policy: { mode: "enforce", patterns: [{ name: "a", pattern: "zz" }] }, clock, timeBudgetMs: 10_000 });
    expect(sync(roomy.inspect(input({ text: "hello" })))).toMatchObject({ action: "allow" });
    expect(() => createCasilEngine({ policy: {}, timeBudgetMs: 0 })).toThrow(/timeBudgetMs/);
  });

  it("budget - a pause of the whole process (the wall clock jumps, the CPU clock does not) is not an overrun; CPU spent past the budget is", () => {
    const policy = { mode: "enforce" as const, patterns: [{ name: "a", pattern: "zz" }, { name: "b", pattern: "yy" }, { name: "c", pattern: "xx" }] };
    let wall = 0;
    // The first read after the start is 100 ms later: the process was descheduled (or collecting garbage) in between.
    const clock = () => (wall += wall === 0 ? 1 : 100);
    let cpu = 0;
    const paused = createCasilEngine({ policy, clock, cpuClock: () => cpu, timeBudgetMs: 50 });
    expect(sync(paused.inspect(input({ text: "hello" })))).toMatchObject({ action: "allow" });
    // The same overrun with CPU time running (30 ms per read, past half the budget): real work, blocked.
    wall = 0;
    const busy = createCasilEngine({ policy, clock, cpuClock: () => (cpu += 30), timeBudgetMs: 50 });
    const d = sync(busy.inspect(input({ text: "hello" })));
    expect(d).toMatchObject({ action: "block", reasonCode: ErrorCode.CASIL_INTERNAL_ERROR });
    expect(d.flags).toContain("inspect_budget_exceeded");
  });

  it("budget - twelve descendant steps over a 25-deep payload redact in linear time", () => {
    let deep: Record<string, unknown> = { leaf: "secret" };
    // A chain (not a shared DAG: serialized, that would be exponential) with siblings at every level.
    for (let i = 0; i < 25; i++) deep = { a: deep, b: [{ leaf: "y" }, 1, "z"], leaf: "x" };
    const path = parseJsonPath("$" + "..a".repeat(12) + "..leaf");
    if (typeof path === "string") throw new Error(path);
    const started = performance.now();
    const count = redactPath(structuredClone(deep), path);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(count).toBeGreaterThan(0);
    expect(parseJsonPath("$" + ".a".repeat(33))).toMatch(/segments/);
    const engine = enforce({ redactionPaths: ["$" + "..a".repeat(12) + "..leaf"], transportRedaction: true });
    const t0 = performance.now();
    expect(sync(engine.inspect({ ...input(null), payload: utf8Encode(JSON.stringify(deep)) })).action).toBe("redact");
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
