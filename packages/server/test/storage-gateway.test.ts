import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { afterEach, describe, expect, it } from "vitest";
import type { Frame } from "@arqon/core";
import { mintToken, payloadOf, TestClient } from "../src/testing.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const childScript = path.join(here, "storage-gateway-child.ts");
const tsx = createRequire(import.meta.url).resolve("tsx");
const secret = randomBytes(24).toString("base64url");

const children: ChildProcess[] = [];
const clients: TestClient[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c[Symbol.asyncDispose]();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Starts a gateway process on `where` (a data dir or "memory"); resolves with its WebSocket URL. */
function startServer(where: string): Promise<{ url: string; kill: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--conditions=arqon-source", "--import", tsx, childScript, where, secret], {
      cwd: path.join(here, ".."),
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(proc);
    let out = "";
    let err = "";
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`gateway did not start within 20 s; stderr: ${err}`));
    }, 20_000);
    proc.stderr.on("data", (c: Buffer) => (err += c.toString()));
    proc.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      const match = /listening (\S+)\n/.exec(out);
      if (!match) return;
      clearTimeout(timer);
      const exited = new Promise<void>((done) => proc.once("exit", () => done()));
      resolve({
        url: match[1]!,
        kill: async () => {
          proc.kill("SIGKILL");
          await exited;
        },
      });
    });
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited early (${code ?? signal}); stderr: ${err}`));
    });
  });
}

async function connect(url: string, sub: string): Promise<TestClient> {
  const token = await mintToken(secret, { sub });
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
  const client = new TestClient(ws, "json");
  clients.push(client);
  const welcome = client.next("welcome");
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  client.welcome = await welcome;
  return client;
}

describe("storage - gateway restart", () => {
  it("storage - after kill -9 of the gateway, acked messages are in history and recovery resumes with the same epoch", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "arqon-gw-"));
    dirs.push(dir);
    const first = await startServer(dir);
    const publisher = await connect(first.url, "publisher");
    const acks: Frame[] = [];
    for (let n = 1; n <= 50; n++) {
      const ack = await publisher.publish("orders", n, n === 20 ? { idempotencyKey: "order-20" } : {});
      expect(ack.type).toBe("ack");
      acks.push(ack);
    }
    expect(acks.map((a) => a.offset)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const epoch = acks[0]!.epoch!;
    await first.kill();

    const second = await startServer(dir);
    const reader = await connect(second.url, "reader");
    const subscribed = await reader.subscribe("orders", { since: { offset: 30, epoch } });
    expect(subscribed).toMatchObject({ type: "subscribed", recovered: true, offset: 50, epoch });
    const missed = await reader.collect(20, (f) => f.type === "message" && f.room === "orders");
    expect(missed.map((m) => m.offset)).toEqual(Array.from({ length: 20 }, (_, i) => 31 + i));
    expect(missed.map((m) => payloadOf(m))).toEqual(Array.from({ length: 20 }, (_, i) => 31 + i));

    const page = await reader.request({ type: "history", room: "orders", history: { fromOffset: 1, limit: 100 } });
    expect(page.type).toBe("history_page");
    expect(page.messages!.map((m) => payloadOf(m))).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));

    // The idempotency key acknowledged before the kill still deduplicates, across a new connection.
    const writer = await connect(second.url, "publisher");
    const repeat = await writer.publish("orders", 20, { idempotencyKey: "order-20" });
    expect(repeat).toMatchObject({ type: "ack", offset: 20, epoch });
    const fresh = await writer.publish("orders", 51);
    expect(fresh).toMatchObject({ type: "ack", offset: 51, epoch });
    const live = await reader.next("message", "orders");
    expect(live.offset).toBe(51);
  }, 60_000);

  it("storage - with the in-memory store a restart changes the epoch and old positions get recovered: false", async () => {
    const first = await startServer("memory");
    const publisher = await connect(first.url, "publisher");
    let last: Frame | undefined;
    for (let n = 1; n <= 5; n++) last = await publisher.publish("orders", n);
    await first.kill();

    const second = await startServer("memory");
    const reader = await connect(second.url, "reader");
    const subscribed = await reader.subscribe("orders", { since: { offset: last!.offset!, epoch: last!.epoch! } });
    expect(subscribed).toMatchObject({ type: "subscribed", recovered: false, reason: "epoch_mismatch" });
    expect(subscribed.epoch).not.toBe(last!.epoch);
  }, 60_000);
});
