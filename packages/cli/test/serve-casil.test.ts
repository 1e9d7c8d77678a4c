import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { afterEach, describe, expect, it } from "vitest";
import { jsonBytes, parseJsonBytes } from "@arqon/core";
import { TestClient } from "@arqon/server/testing";
import { run } from "../src/index.js";

const SECRET = "serve-casil-secret-serve-casil-0123456";
const env = { ARQON_LOG_LEVEL: "silent", ARQON_JWT_SECRET: SECRET };
const dirs: string[] = [];
const stops: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), "arqon-serve-casil-"));
  dirs.push(d);
  return d;
}

async function serve(argv: string[], extraEnv: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const controller = new AbortController();
  const cwd = tmp();
  const done = run(["serve", "--port", "0", "--memory", ...argv], { out: (l) => out.push(l), err: (l) => err.push(l) }, {
    env: { ...env, ...extraEnv },
    cwd,
    signal: controller.signal,
  });
  const deadline = Date.now() + 10_000;
  while (!out.some((l) => l.includes("WebSocket")) && Date.now() < deadline) {
    if (await Promise.race([done.then(() => true), new Promise((r) => setTimeout(() => r(false), 20))])) break;
  }
  stops.push(async () => {
    controller.abort();
    await done;
  });
  const url = out.find((l) => l.includes("WebSocket"))?.split(/\s+/).pop();
  if (!url) throw new Error(`serve did not start: ${err.join("\n")}`);
  return { url, out, cwd };
}

async function token(claims: string[]): Promise<string> {
  const out: string[] = [];
  expect(await run(["token", ...claims, "--jwt-secret", SECRET], { out: (l) => out.push(l), err: () => undefined }, { env, cwd: tmp() })).toBe(0);
  return out[0]!;
}

/** A real ws client (the gateway's TestClient) connected with `jwt`, after its welcome. */
async function connect(url: string, jwt: string): Promise<TestClient> {
  const client = new TestClient(new WebSocket(url, { headers: { authorization: `Bearer ${jwt}` } }), "json");
  client.welcome = await client.next("welcome", undefined, { timeoutMs: 10_000 });
  return client;
}

describe("arqon serve - CASIL and operators", () => {
  it("serve casil - with a configured key on by default in enforce mode (a probable secret is blocked); ARQON_CASIL_MODE=monitor only records; op.casil.get answers admins", async () => {
    const { url, out } = await serve([]);
    expect(out.join("\n")).toMatch(/CASIL\s+enforce/);
    const admin = await connect(url, await token(["--sub", "root", "--tenant", "t1", "--role", "admin"]));
    const blocked = await admin.request({ type: "publish", room: "r", payload: jsonBytes({ key: "AKIAIOSFODNN7EXAMPLE" }) });
    expect(blocked.error?.code).toBe("CASIL_POLICY_BLOCKED_SECRET");
    const got = await admin.request({ type: "command", command: "op.casil.get" });
    expect(got.status).toBe("ok");
    expect(parseJsonBytes(got.payload!)).toMatchObject({ baseline: { mode: "enforce" } });
    admin.ws.close();
    const monitor = await serve([], { ARQON_CASIL_MODE: "monitor" });
    expect(monitor.out.join("\n")).toMatch(/CASIL\s+monitor/);
    const recorded = await connect(monitor.url, await token(["--sub", "root", "--tenant", "t1", "--role", "admin"]));
    expect((await recorded.request({ type: "publish", room: "r", payload: jsonBytes({ key: "AKIAIOSFODNN7EXAMPLE" }) })).type).toBe("ack");
    recorded.ws.close();
    // The standard operators are there too.
    const other = await connect(url, await token(["--sub", "root", "--tenant", "t1", "--role", "admin"]));
    const put = await other.request({ type: "command", command: "op.store.put", args: jsonBytes({ key: "k", value: 1 }) });
    expect(put.status).toBe("ok");
    const omega = await other.request({ type: "command", command: "op.omega.status" });
    expect(omega.error?.code).toBe("FEATURE_DISABLED");
    other.ws.close();
  });

  it("serve casil - a policy file in enforce mode blocks secrets; --no-casil answers FEATURE_DISABLED", async () => {
    const policyDir = tmp();
    const policy = path.join(policyDir, "policy.json");
    writeFileSync(policy, JSON.stringify({ mode: "enforce" }));
    const { url } = await serve(["--casil-policy", policy]);
    const alice = await connect(url, await token(["--sub", "alice", "--tenant", "t1"]));
    const blocked = await alice.request({ type: "publish", room: "r", payload: jsonBytes({ key: "AKIAIOSFODNN7EXAMPLE" }) });
    expect(blocked.type).toBe("error");
    expect(blocked.error?.code).toBe("CASIL_POLICY_BLOCKED_SECRET");
    alice.ws.close();

    const off = await serve(["--no-casil"]);
    const admin = await connect(off.url, await token(["--sub", "root", "--tenant", "t1", "--role", "admin"]));
    const res = await admin.request({ type: "command", command: "op.casil.reload", args: jsonBytes({ mode: "enforce" }) });
    expect(res.error?.code).toBe("FEATURE_DISABLED");
    admin.ws.close();
  });
});
