import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, jsonBytes, roomKey, type Frame } from "@arqon/core";
import { CasilController, type CasilControllerOptions } from "../src/casil/index.js";
import { payloadOf, startGateway, type TestClient, type TestGateway } from "../src/testing.js";

const DENY_WORD_DIR = fileURLToPath(new URL("../../../apps/examples/casil-wasm-policy/", import.meta.url));
const SECRET = { text: "my key is AKIAIOSFODNN7EXAMPLE" };

let gw: TestGateway | undefined;
let casil: CasilController | undefined;
afterEach(async () => {
  await gw?.close();
  await casil?.close();
  gw = undefined;
  casil = undefined;
});

async function start(options: CasilControllerOptions): Promise<TestGateway> {
  casil = await CasilController.create(options);
  gw = await startGateway({ casil });
  return gw;
}

/**
 * Proves `blocked` never reached `client`: a marker published after it must be the next message the client sees,
 * and nothing else arrives within a bounded wait.
 */
async function neverDelivered(sender: TestClient, client: TestClient, room: string, waitMs = 150): Promise<void> {
  const inRoom = (): Frame[] => client.frames.filter((f) => f.type === "message" && f.room === room);
  const before = inRoom().length;
  const marker = `marker-${Math.random()}`;
  expect((await sender.publish(room, { marker })).type).toBe("ack");
  const next = await client.waitFor((f) => f.type === "message" && f.room === room && (payloadOf(f) as { marker?: string })?.marker === marker);
  expect(inRoom().indexOf(next)).toBe(before);
  await new Promise((r) => setTimeout(r, waitMs));
  expect(inRoom()).toHaveLength(before + 1);
}

describe("casil through a real gateway", () => {
  it("casil e2e - enforce blocks a secret on every inbound path with the request id and reason; nothing is delivered or stored", async () => {
    await start({ policy: { mode: "enforce" } });
    let ran = 0;
    gw!.server.registerCommand("op.note.add", () => ++ran);
    const alice = await gw!.client({ sub: "alice" });
    const bob = await gw!.client({ sub: "bob" });
    await bob.subscribe("lobby");

    const blocked = await alice.publish("lobby", SECRET, { requestId: "p1" });
    expect(blocked).toMatchObject({
      type: "error",
      requestId: "p1",
      error: { code: ErrorCode.CASIL_POLICY_BLOCKED_SECRET, message: "payload contains a probable secret (aws_access_key)" },
    });
    expect((await gw!.server.history.position(roomKey("acme", "lobby"))).offset).toBe(0);
    await neverDelivered(alice, bob, "lobby");

    await expect(gw!.server.publish("acme", "lobby", SECRET)).rejects.toMatchObject({ code: ErrorCode.CASIL_POLICY_BLOCKED_SECRET });
    await expect(gw!.server.publish("acme", "lobby", SECRET, { path: "operator", sender: "op.cron" })).rejects.toMatchObject({ code: ErrorCode.CASIL_POLICY_BLOCKED_SECRET });

    const token = await gw!.token({ sub: "svc", role: "server" });
    const http = await fetch(`${gw!.httpUrl}/api/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ room: "lobby", payload: SECRET }),
    });
    expect(http.status).toBe(422);
    expect(((await http.json()) as { error: { code: string } }).error.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);

    const presence = await alice.subscribe("other", { info: { info: jsonBytes({ bio: "password=hunter2" }) } } as Partial<Frame>);
    expect(presence).toMatchObject({ type: "error", error: { code: ErrorCode.CASIL_POLICY_BLOCKED_SECRET } });
    const state = await alice.request({ type: "state_set", room: "lobby", state: [{ key: "k", value: jsonBytes(SECRET) }] });
    expect(state).toMatchObject({ type: "error", error: { code: ErrorCode.CASIL_POLICY_BLOCKED_SECRET } });
    expect(await gw!.server.state.get(roomKey("acme", "lobby"))).toEqual([]);
    const command = await alice.request({ type: "command", command: "op.note.add", args: jsonBytes(SECRET) });
    expect(command).toMatchObject({ type: "error", error: { code: ErrorCode.CASIL_POLICY_BLOCKED_SECRET } });
    expect(ran).toBe(0);

    await neverDelivered(alice, bob, "lobby");
    expect(bob.frames.filter((f) => f.type === "message")).toHaveLength(2);
    const counts = casil!.stats().decisions.filter((d) => d.decision === "block").reduce((n, d) => n + d.count, 0);
    expect(counts).toBe(7);
  });

  it("casil e2e - monitor mode delivers unchanged; transport redaction on delivers the redacted payload, off the original", async () => {
    await start({ policy: { mode: "monitor", redactionPaths: ["$.user.password"], transportRedaction: true } });
    const alice = await gw!.client({ sub: "alice" });
    const bob = await gw!.client({ sub: "bob" });
    await bob.subscribe("lobby");
    const original = { user: { name: "bob", password: "pw" }, n: 1 };
    expect((await alice.publish("lobby", original)).type).toBe("ack");
    const monitored = await bob.next("message", "lobby");
    expect(payloadOf(monitored)).toEqual(original);
    expect(monitored.inspection).toBeUndefined();

    await casil!.reload({ mode: "enforce", redactionPaths: ["$.user.password"], transportRedaction: true, blockOnProbableSecret: false });
    expect((await alice.publish("lobby", original)).type).toBe("ack");
    const redacted = await bob.next("message", "lobby");
    expect(payloadOf(redacted)).toEqual({ user: { name: "bob", password: "[REDACTED]" }, n: 1 });
    expect(redacted.inspection).toMatchObject({ decision: "redact", reasonCode: ErrorCode.CASIL_POLICY_REDACTED, policyVersion: 2 });

    await casil!.reload({ mode: "enforce", redactionPaths: ["$.user.password"], transportRedaction: false, blockOnProbableSecret: false });
    expect((await alice.publish("lobby", original)).type).toBe("ack");
    expect(payloadOf(await bob.next("message", "lobby"))).toEqual(original);
  });

  it("casil e2e - op.casil.reload: non-admin refused, invalid changes nothing, a tenant's enforce layer blocks for that tenant only", async () => {
    await start({ policy: { mode: "monitor", maxPayloadBytes: 64 } });
    const alice = await gw!.client({ sub: "alice" });
    const admin = await gw!.client({ sub: "root", role: "admin" });
    const bob = await gw!.client({ sub: "bob" });
    const beta = await gw!.client({ sub: "carol", tenant: "beta" });
    await bob.subscribe("lobby");
    const big = { text: "x".repeat(100) };
    expect((await alice.publish("lobby", big)).type).toBe("ack");
    expect(payloadOf(await bob.next("message", "lobby"))).toEqual(big);

    const refused = await alice.request({ type: "command", command: "op.casil.reload", args: jsonBytes({ policy: { mode: "enforce" } }) });
    expect(refused).toMatchObject({ type: "response", status: "error", error: { code: ErrorCode.AUTHORIZATION_ERROR } });
    const invalid = await admin.request({ type: "command", command: "op.casil.reload", args: jsonBytes({ policy: "mode: enforce\nmaxPayloadBytes: -1\n" }) });
    expect(invalid).toMatchObject({ type: "response", status: "error", error: { code: ErrorCode.VALIDATION_ERROR } });
    expect(invalid.error!.message).toMatch(/maxPayloadBytes: must be >= 1/);
    expect(gw!.server.casil!.layerVersion("acme")).toBeUndefined();
    expect((await alice.publish("lobby", big)).type).toBe("ack");
    await bob.next("message", "lobby");

    // The earlier system's patch form: the tenant's traffic goes to enforce, baseline rules included.
    const ok = await admin.request({ type: "command", command: "op.casil.reload", args: jsonBytes({ mode: "enforce" }) });
    expect(ok).toMatchObject({ type: "response", status: "ok" });
    expect(payloadOf(ok)).toMatchObject({ tenant: "acme", version: 1, previousVersion: 0 });
    const nowBlocked = await alice.publish("lobby", big);
    expect(nowBlocked).toMatchObject({ type: "error", error: { code: ErrorCode.CASIL_POLICY_OVERSIZE } });
    await neverDelivered(alice, bob, "lobby");
    expect((await beta.publish("lobby", big)).type).toBe("ack");
    expect(casil!.version).toBe(1);
    const got = await admin.request({ type: "command", command: "op.casil.get" });
    expect(payloadOf(got)).toMatchObject({ baseline: { version: 1, mode: "monitor" }, layer: { version: 1 } });
  });

  it("casil e2e - two tenants: A's layer enforces and blocks a word, B keeps receiving it; A's reload reaches neither the baseline nor B", async () => {
    await start({ policy: { mode: "monitor" } });
    const aAdmin = await gw!.client({ sub: "root", role: "admin", tenant: "a" });
    const aUser = await gw!.client({ sub: "alice", tenant: "a" });
    const aReader = await gw!.client({ sub: "anna", tenant: "a" });
    const bUser = await gw!.client({ sub: "bob", tenant: "b" });
    const bReader = await gw!.client({ sub: "bea", tenant: "b" });
    await aReader.subscribe("chat");
    await bReader.subscribe("chat");
    const reload = await aAdmin.request({
      type: "command",
      command: "op.casil.reload",
      args: jsonBytes({ policy: { mode: "enforce", patterns: [{ name: "no-pineapple", pattern: "pineapple", flags: "i" }] } }),
    });
    expect(payloadOf(reload)).toMatchObject({ tenant: "a", version: 1 });
    expect((await aUser.publish("chat", { text: "Pineapple pizza" })).error).toMatchObject({ code: ErrorCode.CASIL_POLICY_BLOCKED_PATTERN });
    await neverDelivered(aUser, aReader, "chat");
    expect((await bUser.publish("chat", { text: "Pineapple pizza" })).type).toBe("ack");
    expect(payloadOf(await bReader.next("message", "chat"))).toEqual({ text: "Pineapple pizza" });
    const reach = await aAdmin.request({ type: "command", command: "op.casil.reload", args: jsonBytes({ policy: { tenants: { b: { mode: "enforce" } } } }) });
    expect(reach.error?.code).toBe(ErrorCode.AUTHORIZATION_ERROR);
    expect(casil!.version).toBe(1);
    expect(gw!.server.casil!.layerVersion("b")).toBeUndefined();
  });

  it("casil e2e - a payload passed through as the client's bytes is inspected as such; escapes and spacing still meet the parsed form", async () => {
    await start({ policy: { mode: "enforce", patterns: [{ name: "no-pineapple", pattern: "pineapple" }] } });
    const alice = await gw!.client({ sub: "alice" });
    const bob = await gw!.client({ sub: "bob" });
    await bob.subscribe("chat");
    const wire: string[] = [];
    bob.ws.on("message", (data: Buffer) => wire.push(data.toString("utf8")));
    const send = async (requestId: string, text: string): Promise<Frame> => {
      alice.sendRaw(text);
      return alice.waitFor((f) => f.requestId === requestId);
    };
    // The compact form (what SDKs send) is passed through, and inspected as those bytes.
    expect((await send("p1", '{"type":"publish","requestId":"p1","room":"chat","payload":{"text":"pineapple"}}')).error).toMatchObject({
      code: ErrorCode.CASIL_POLICY_BLOCKED_PATTERN,
    });
    // An escape or a space would hide the word from the bytes; those payloads are re-serialised before inspection.
    for (const [id, payload] of [
      ["p2", '{"text":"pine\\u0061pple"}'],
      ["p3", '{"text":"pine\\u0061pple", "n":1}'],
    ] as const) {
      const reply = await send(id, `{"type":"publish","requestId":"${id}","room":"chat","payload":${payload}}`);
      expect(reply.error, payload).toMatchObject({ code: ErrorCode.CASIL_POLICY_BLOCKED_PATTERN });
    }
    await neverDelivered(alice, bob, "chat");
    // What passes reaches subscribers as the publisher wrote it: key order, a float's digits.
    expect((await send("p4", '{"type":"publish","requestId":"p4","room":"chat","payload":{"z":1,"ts":1733.567,"a":[true,null,"é"]}}')).type).toBe("ack");
    await bob.waitFor((f) => f.type === "message" && (payloadOf(f) as { z?: number }).z === 1);
    expect(wire.some((text) => text.includes('{"z":1,"ts":1733.567,"a":[true,null,"é"]}'))).toBe(true);
  });

  it("casil e2e - a Wasm policy (the AssemblyScript example) blocks with CASIL_WASM_DENY", async () => {
    await start({ policy: { mode: "enforce", wasm: [{ name: "deny-word", module: "build/deny-word.wasm", rooms: ["chat.*"] }] }, baseDir: DENY_WORD_DIR, wasm: { budgetMs: 200 } });
    const alice = await gw!.client({ sub: "alice" });
    const bob = await gw!.client({ sub: "bob" });
    await bob.subscribe("chat.main");
    const denied = await alice.publish("chat.main", { text: "this is forbidden" }, { requestId: "w1" });
    expect(denied).toMatchObject({ type: "error", requestId: "w1", error: { code: ErrorCode.CASIL_WASM_DENY, message: "deny-word: payload contains a forbidden word" } });
    await neverDelivered(alice, bob, "chat.main");
  });

  it("casil metrics - shadow differences are labelled by the first 10,000 tenants, the rest under _other", async () => {
    const key = "operator-key-of-the-casil-shadow-metric-01";
    casil = await CasilController.create({ policy: { mode: "monitor", maxPayloadBytes: 1000, shadow: { mode: "enforce", maxPayloadBytes: 20 } } });
    // The controller keeps 10,000 tenants apart; the server's label bound (default 100) is raised to match here.
    gw = await startGateway({ casil, operatorKeys: [key], limits: { maxConnectionsPerTenant: 100_000 }, metrics: { maxTenantLabels: 10_000 } });
    const big = { text: "q".repeat(40) };
    for (let i = 0; i < 10_003; i++) await gw.server.publish(`t${i}`, "lobby", big);
    await gw.server.publish("t0", "lobby", big);
    const text = await (await fetch(`${gw.httpUrl}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text();
    const rows = text.split("\n").filter((l) => l.startsWith("arqon_casil_shadow_differences_total{"));
    expect(rows).toHaveLength(10_001);
    expect(rows).toContain('arqon_casil_shadow_differences_total{tenant="t0"} 2');
    expect(rows).toContain('arqon_casil_shadow_differences_total{tenant="t9999"} 1');
    expect(rows).toContain('arqon_casil_shadow_differences_total{tenant="_other"} 3');
    expect(rows.some((l) => l.includes('"t10000"'))).toBe(false);
  }, 60_000);
});
