import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { afterEach, describe, expect, it } from "vitest";
import { createAuthenticator } from "@arqon/server";
import { run } from "../src/index.js";

const SECRET = "cli-test-secret-cli-test-secret-0123";
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), "arqon-cli-"));
  dirs.push(d);
  return d;
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

const env = { ARQON_LOG_LEVEL: "silent" };

function firstFrame(url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; frame: { type: string; tenant?: string } }> {
  const ws = new WebSocket(url, { headers });
  return new Promise((resolve, reject) => {
    ws.once("message", (d) => resolve({ ws, frame: JSON.parse(d.toString()) }));
    ws.once("error", reject);
  });
}

/** Starts `arqon serve` in-process and resolves once it printed its banner. */
async function startServe(argv: string[], cwd: string, extraEnv: Record<string, string> = {}) {
  const { out, err, io } = capture();
  const controller = new AbortController();
  const done = run(["serve", ...argv], io, { env: { ...env, ...extraEnv }, cwd, signal: controller.signal });
  const deadline = Date.now() + 5000;
  while (!out.some((l) => l.includes("WebSocket")) && Date.now() < deadline) {
    const settled = await Promise.race([done.then(() => true), new Promise((r) => setTimeout(() => r(false), 20))]);
    if (settled) break;
  }
  const url = out.find((l) => l.includes("WebSocket"))?.split(/\s+/).pop();
  return { out, err, done, stop: () => controller.abort(), url };
}

describe("arqon token", () => {
  it("token - signs with --jwt-secret; the gateway's verifier accepts it with sub, tenant, role and ttl", async () => {
    const { out, io } = capture();
    const code = await run(["token", "--sub", "alice", "--tenant", "acme", "--role", "admin", "--ttl", "2h", "--jwt-secret", SECRET], io, { env, cwd: tmp() });
    expect(code).toBe(0);
    expect(out).toHaveLength(1);
    const auth = await createAuthenticator({ secret: SECRET }).verify(out[0]);
    expect(auth).toMatchObject({ sub: "alice", tenant: "acme", role: "admin", admin: true });
    expect(auth.expiresAt! - Date.now()).toBeGreaterThan(2 * 3600_000 - 60_000);
    expect(auth.expiresAt! - Date.now()).toBeLessThanOrEqual(2 * 3600_000);
  });

  it("token - missing --sub, a bad --ttl or bad --caps exit 2 with a message", async () => {
    const cwd = tmp();
    for (const [args, text] of [
      [["--tenant", "acme"], "--sub is required"],
      [["--sub", "a", "--tenant", "acme", "--ttl", "soon"], "--ttl"],
      [["--sub", "a", "--tenant", "acme", "--caps", "{nope"], "--caps"],
      [["--sub", "a", "--tenant", "bad tenant!", "--jwt-secret", SECRET], "tenant"],
      [["--sub", "a", "--tenant", "acme", "--bogus"], "bogus"],
    ] as const) {
      const { err, io } = capture();
      expect(await run(["token", ...args], io, { env, cwd })).toBe(2);
      expect(err.join("\n")).toContain(text);
    }
  });

  it("token - without a key it uses (and creates) the dev key under ./.arqon", async () => {
    const cwd = tmp();
    const { out, err, io } = capture();
    expect(await run(["token", "--sub", "bob", "--tenant", "dev", "--caps", '{"sub":["lobby"]}'], io, { env, cwd })).toBe(0);
    const file = path.join(cwd, ".arqon", "dev-key.json");
    expect(err[0]).toContain(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const key = JSON.parse(readFileSync(file, "utf8")) as { alg: string; secret: string };
    expect(key.alg).toBe("HS256");
    const auth = await createAuthenticator({ secret: key.secret }).verify(out[0]);
    expect(auth.caps).toEqual({ sub: ["lobby"] });
  });
});

describe("arqon serve", () => {
  it("serve - first run creates the dev key, prints URLs, a token and a wscat line; the token connects", async () => {
    const cwd = tmp();
    const s = await startServe(["--port", "0"], cwd);
    try {
      expect(s.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/ws$/);
      const text = s.out.join("\n");
      expect(text).toContain("DEV MODE");
      expect(text).toContain("(created now)");
      // Dev mode records what CASIL would block; with a configured key it enforces (serve-casil.test.ts).
      expect(text).toMatch(/CASIL\s+monitor/);
      expect(text).toMatch(/\/health/);
      expect(text).toMatch(/\/metrics/);
      const wscatLine = s.out.find((l) => l.includes("npx wscat -c"))!;
      const connectUrl = /"([^"]+)"/.exec(wscatLine)![1]!;
      const { ws, frame } = await firstFrame(connectUrl);
      expect(frame).toMatchObject({ type: "welcome", tenant: "dev" });
      const tok = capture();
      expect(await run(["token", "--sub", "bob", "--tenant", "dev"], tok.io, { env, cwd })).toBe(0);
      const second = await firstFrame(s.url!, { authorization: `Bearer ${tok.out[0]}` });
      expect(second.frame.type).toBe("welcome");
      const closed = new Promise<number>((r) => ws.once("close", (c) => r(c)));
      s.stop();
      expect(await s.done).toBe(0);
      expect(await closed).toBe(1001);
      second.ws.terminate();
    } finally {
      s.stop();
      await s.done.catch(() => undefined);
    }
  });

  it("serve - a second run reuses the dev key, so earlier tokens still work", async () => {
    const cwd = tmp();
    const tok = capture();
    await run(["token", "--sub", "carol", "--tenant", "dev"], tok.io, { env, cwd });
    const s = await startServe(["--port", "0"], cwd);
    try {
      expect(s.out.join("\n")).not.toContain("(created now)");
      const { ws, frame } = await firstFrame(s.url!, { authorization: `Bearer ${tok.out[0]}` });
      expect(frame.type).toBe("welcome");
      ws.terminate();
    } finally {
      s.stop();
      await s.done;
    }
  });

  it("serve - config file, ARQON_* variables and flags in that order of precedence", async () => {
    const cwd = tmp();
    writeFileSync(path.join(cwd, "arqon.config.json"), JSON.stringify({ port: 1, path: "/from-file", auth: { secret: "file-secret-file-secret-file-secret" } }));
    const s = await startServe([], cwd, { ARQON_PORT: "0", ARQON_JWT_SECRET: SECRET });
    try {
      expect(s.url).toMatch(/:\d+\/from-file$/);
      expect(s.out.join("\n")).not.toContain("DEV MODE");
      const tok = capture();
      await run(["token", "--sub", "dave", "--tenant", "acme"], tok.io, { env: { ...env, ARQON_JWT_SECRET: SECRET }, cwd });
      const { ws, frame } = await firstFrame(s.url!, { authorization: `Bearer ${tok.out[0]}` });
      expect(frame).toMatchObject({ type: "welcome", tenant: "acme" });
      ws.terminate();
    } finally {
      s.stop();
      await s.done;
    }
  });

  it("serve - --no-presence turns presence off in matching rooms only", async () => {
    const cwd = tmp();
    const s = await startServe(["--port", "0", "--memory", "--jwt-secret", SECRET, "--no-presence", "feed/*"], cwd);
    try {
      const tok = capture();
      expect(await run(["token", "--sub", "bob", "--tenant", "acme", "--jwt-secret", SECRET], tok.io, { env, cwd })).toBe(0);
      const { ws } = await firstFrame(`${s.url}?token=${tok.out[0]}`);
      const replies = new Map<string, { type: string; error?: { code: string }; members?: unknown[] }>();
      ws.on("message", (d) => {
        const f = JSON.parse(d.toString()) as { requestId?: string; type: string };
        if (f.requestId) replies.set(f.requestId, f);
      });
      const request = async (frame: Record<string, unknown>) => {
        ws.send(JSON.stringify(frame));
        const deadline = Date.now() + 5000;
        while (!replies.has(frame.requestId as string) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        return replies.get(frame.requestId as string)!;
      };
      expect((await request({ type: "subscribe", room: "feed/prices", requestId: "1" })).type).toBe("subscribed");
      expect((await request({ type: "presence_list", room: "feed/prices", requestId: "2" })).error?.code).toBe("ARQ_PRESENCE_DISABLED");
      const lobby = await request({ type: "subscribe", room: "lobby", requestId: "3" });
      expect(lobby.members).toHaveLength(1);
      ws.terminate();
    } finally {
      s.stop();
      await s.done.catch(() => undefined);
    }
  });

  it("serve - bad settings exit 2 with a message", async () => {
    const cwd = tmp();
    for (const [args, extraEnv, text] of [
      [["--port", "99999"], {}, "port must be"],
      [["--jwt-secret", "short"], {}, "at least 32"],
      [["--dev", "--jwt-secret", SECRET], {}, "--dev"],
      [["--config", "missing.json"], {}, "does not exist"],
      [[], { ARQON_PORT: "abc" }, "ARQON_PORT"],
    ] as const) {
      const { err, io } = capture();
      expect(await run(["serve", ...args], io, { env: { ...env, ...extraEnv }, cwd, signal: AbortSignal.abort() })).toBe(2);
      expect(err.join("\n")).toContain(text);
    }
  });
});
