import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { afterEach, describe, expect, it } from "vitest";
import { jsonBytes, type Frame } from "@arqon/core";
import { TestClient, mintToken, payloadOf } from "@arqon/server/testing";
import { run } from "../src/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const cliEntry = path.join(here, "../src/cli.ts");
const tsx = createRequire(import.meta.url).resolve("tsx");
const SECRET = "restart-test-secret-restart-test-0123";
const OPERATOR_KEY = "serve-restart-operator-key-0123456789";

const dirs: string[] = [];
const children: ChildProcess[] = [];
const clients: TestClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c[Symbol.asyncDispose]();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), "arqon-restart-"));
  dirs.push(d);
  return d;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Serve {
  proc: ChildProcess;
  url: string;
  httpUrl: string;
  out: string;
}

/** Starts `arqon serve` as a child process (the real CLI entry) and resolves once it printed its banner. */
function serve(cwd: string, port: number, extra: string[] = []): Promise<Serve> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      ["--conditions=arqon-source", "--import", tsx, cliEntry, "serve", "--port", String(port), "--jwt-secret", SECRET, ...extra],
      { cwd, env: { ...process.env, ARQON_LOG_LEVEL: "warn", ARQON_LOG_FORMAT: "json", ARQON_OPERATOR_KEY: OPERATOR_KEY }, stdio: ["ignore", "pipe", "pipe"] },
    );
    children.push(proc);
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`arqon serve did not start within 15 s; stderr: ${err}`)), 15_000);
    proc.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    proc.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.includes("Storage")) {
        clearTimeout(timer);
        resolve({ proc, out, url: `ws://127.0.0.1:${port}/ws`, httpUrl: `http://127.0.0.1:${port}` });
      }
    });
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`arqon serve exited (${code ?? signal}) before listening; stderr: ${err}`));
    });
  });
}

async function kill9(s: Serve): Promise<void> {
  const exited = new Promise<void>((resolve) => s.proc.once("exit", () => resolve()));
  s.proc.kill("SIGKILL");
  await exited;
}

async function connect(url: string, sub: string): Promise<TestClient> {
  const token = await mintToken(SECRET, { sub, tenant: "acme" });
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
  const client = new TestClient(ws, "json");
  clients.push(client);
  const welcome = client.next("welcome", undefined, { timeoutMs: 5000 });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  client.welcome = await welcome;
  return client;
}

async function publishAll(client: TestClient, room: string, from: number, to: number): Promise<Frame[]> {
  const acks: Frame[] = [];
  for (let n = from; n <= to; n++) {
    const ack = await client.request({ type: "publish", room, payload: jsonBytes({ n }) });
    expect(ack.type).toBe("ack");
    acks.push(ack);
  }
  return acks;
}

describe("arqon serve - durable history across kill -9", () => {
  it("restart - every acked message survives kill -9 on the same data dir; recovery across the restart keeps the epoch; retention overflow is reported", async () => {
    const cwd = tmp();
    const dataDir = path.join(cwd, "state");
    writeFileSync(path.join(cwd, "arqon.config.json"), JSON.stringify({ retention: [{ pattern: "small", maxMessages: 5 }] }));
    const port = await freePort();
    const first = await serve(cwd, port, ["--data-dir", dataDir]);
    expect(first.out).toContain(path.join(dataDir, "data"));
    const status = (await (await fetch(`${first.httpUrl}/status`, { headers: { authorization: `Bearer ${OPERATOR_KEY}` } })).json()) as { storage: unknown; backends: { history: string } };
    expect(status.storage).toEqual({ backend: "lmdb", durable: true });
    expect(status.backends.history).toBe("LmdbHistoryStore");

    const reader = await connect(first.url, "reader");
    await reader.subscribe("orders");
    const writer = await connect(first.url, "writer");
    const acks = await publishAll(writer, "orders", 1, 40);
    const epoch = acks[0]!.epoch!;
    expect(acks.map((a) => a.offset)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    // The reader saw the first 25 and then went away; it will come back with that position.
    const seen = await reader.collect(25, (f) => f.type === "message");
    const position = { offset: seen.at(-1)!.offset!, epoch: seen.at(-1)!.epoch! };
    expect(position).toEqual({ offset: 25, epoch });
    const smallAcks = await publishAll(writer, "small", 1, 10);
    await kill9(first);

    const second = await serve(cwd, port, ["--data-dir", dataDir]);
    const back = await connect(second.url, "reader");
    const page = await back.request({ type: "history", room: "orders", history: { limit: 1000 } });
    expect(page).toMatchObject({ type: "history_page", offset: 40, epoch });
    expect(page.messages!.map((m) => payloadOf(m))).toEqual(acks.map((_, i) => ({ n: i + 1 })));
    const recovered = await back.subscribe("orders", { since: position });
    expect(recovered).toMatchObject({ type: "subscribed", recovered: true, offset: 40, epoch });
    const missed = await back.collect(15, (f) => f.type === "message" && f.room === "orders");
    expect(missed.map((m) => m.offset)).toEqual(Array.from({ length: 15 }, (_, i) => 26 + i));
    // New publishes continue the same sequence, and reach the recovered subscriber live.
    const writer2 = await connect(second.url, "writer");
    const [next] = await publishAll(writer2, "orders", 41, 41);
    expect(next).toMatchObject({ offset: 41, epoch });
    expect((await back.waitFor((f) => f.type === "message" && f.offset === 41)).epoch).toBe(epoch);

    const small = await back.subscribe("small", { since: { offset: 1, epoch: smallAcks[0]!.epoch! } });
    expect(small).toMatchObject({ recovered: false, reason: "retention_exceeded", offset: 10, epoch: smallAcks[0]!.epoch });
    const smallPage = await back.request({ type: "history", room: "small", history: {} });
    expect(smallPage.messages!.map((m) => m.offset)).toEqual([6, 7, 8, 9, 10]);
    await kill9(second);
  }, 60_000);

  it("restart - with --memory the epoch changes after kill -9 and an old position gets recovered false, epoch_mismatch", async () => {
    const cwd = tmp();
    const port = await freePort();
    const first = await serve(cwd, port, ["--memory"]);
    expect(first.out).toContain("in memory");
    const status = (await (await fetch(`${first.httpUrl}/status`, { headers: { authorization: `Bearer ${OPERATOR_KEY}` } })).json()) as { storage: unknown };
    expect(status.storage).toEqual({ backend: "memory", durable: false });
    const writer = await connect(first.url, "writer");
    const acks = await publishAll(writer, "orders", 1, 5);
    await kill9(first);

    const second = await serve(cwd, port, ["--memory"]);
    const back = await connect(second.url, "reader");
    const reply = await back.subscribe("orders", { since: { offset: 5, epoch: acks[4]!.epoch! } });
    expect(reply).toMatchObject({ type: "subscribed", recovered: false, reason: "epoch_mismatch" });
    expect(reply.epoch).toBeTruthy();
    expect(reply.epoch).not.toBe(acks[4]!.epoch);
    expect(reply.offset ?? 0).toBe(0);
    await kill9(second);
  }, 60_000);

  it("storage flags - a bad --storage, --memory with another storage and bad retention rules exit 2 with a message", async () => {
    const cwd = tmp();
    const cases: Array<[string[], string, unknown?]> = [
      [["--storage", "redis"], "--storage"],
      [["--memory", "--storage", "embedded"], "--memory"],
      [[], "retention[0]", { retention: [{ maxMessages: 5 }] }],
      [[], "retention[0].maxAgeMs", { retention: [{ pattern: "a", maxAgeMs: -1 }] }],
      [[], "retention", { retention: { pattern: "a" } }],
    ];
    for (const [args, text, config] of cases) {
      const file = path.join(cwd, "arqon.config.json");
      writeFileSync(file, JSON.stringify(config ?? {}));
      const err: string[] = [];
      const io = { out: () => undefined, err: (l: string) => err.push(l) };
      expect(await run(["serve", "--port", "0", "--jwt-secret", SECRET, ...args], io, { env: { ARQON_LOG_LEVEL: "silent" }, cwd })).toBe(2);
      expect(err.join("\n")).toContain(text);
    }
  });
});
