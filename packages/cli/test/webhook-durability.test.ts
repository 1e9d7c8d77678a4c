import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createRequire } from "node:module";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { afterEach, describe, expect, it } from "vitest";
import { jsonBytes } from "@arqon/core";
import { TestClient, mintToken } from "@arqon/server/testing";

const here = path.dirname(fileURLToPath(import.meta.url));
const cliEntry = path.join(here, "../src/cli.ts");
const tsx = createRequire(import.meta.url).resolve("tsx");
const SECRET = "webhook-durability-secret-0123456789ab";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** `arqon serve` as a child process on `port`, allowed to reach loopback receivers; resolves once it listens. */
function serve(dataDir: string, port: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [
        "--conditions=arqon-source",
        "--import",
        tsx,
        cliEntry,
        "serve",
        "--port",
        String(port),
        "--jwt-secret",
        SECRET,
        "--data-dir",
        dataDir,
        "--outbound-allow",
        "127.0.0.1",
        "--outbound-allow-http",
      ],
      { env: { ...process.env, ARQON_LOG_LEVEL: "warn", ARQON_LOG_FORMAT: "json" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    cleanups.push(() => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    });
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`arqon serve did not start within 20 s: ${err}`)), 20_000);
    proc.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    proc.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.includes("Storage")) {
        clearTimeout(timer);
        resolve(proc);
      }
    });
  });
}

async function connect(port: number, claims: { sub: string; role?: string }): Promise<TestClient> {
  const token = await mintToken(SECRET, { ...claims, tenant: "acme" });
  const client = new TestClient(new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${token}` } }), "json");
  cleanups.push(() => client.ws.terminate());
  client.welcome = await client.next("welcome", undefined, { timeoutMs: 10_000 });
  return client;
}

describe("op.webhook - durable deliveries", () => {
  it("webhook - deliveries pending when the server is killed (SIGKILL) arrive after it restarts: lost = 0", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "arqon-webhook-kill-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    let up = false;
    const received: Array<{ id: string; offset: number }> = [];
    const receiver: Server = createHttpServer((req, res) => {
      let raw = "";
      req.on("data", (c: Buffer) => (raw += c.toString()));
      req.on("end", () => {
        if (!up) return void res.writeHead(503).end();
        received.push({ id: String(req.headers["webhook-id"]), offset: (JSON.parse(raw) as { offset: number }).offset });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", () => r()));
    cleanups.push(() => new Promise((r) => receiver.close(r)));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

    const port = await freePort();
    const first = await serve(dir, port);
    const admin = await connect(port, { sub: "root", role: "admin" });
    const reg = await admin.request({ type: "command", command: "op.webhook.register", args: jsonBytes({ name: "h", room: "orders", url }) });
    expect(reg.status).toBe("ok");
    const COUNT = 30;
    for (let i = 1; i <= COUNT; i++) expect((await admin.publish("orders", { i })).type).toBe("ack");
    // The receiver refuses everything so far: all 30 deliveries are pending when the process is killed.
    await new Promise((r) => setTimeout(r, 300));
    const exited = new Promise((r) => first.once("exit", r));
    first.kill("SIGKILL");
    await exited;
    expect(received).toHaveLength(0);

    up = true;
    await serve(dir, port);
    const deadline = Date.now() + 30_000;
    while (new Set(received.map((r) => r.offset)).size < COUNT && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const delivered = new Set(received.map((r) => r.offset));
    const lost = Array.from({ length: COUNT }, (_, i) => i + 1).filter((o) => !delivered.has(o));
    const repeats = received.length - new Set(received.map((r) => r.id)).size;
    console.log(`webhook after SIGKILL: ${COUNT} acked while the receiver was down, ${delivered.size} delivered after the restart, lost = ${lost.length}, repeated webhook-ids = ${repeats}`);
    expect(lost).toEqual([]);
    // In order: the hook delivers its room's messages one after the other.
    expect(received.map((r) => r.offset).filter((o, i, all) => all.indexOf(o) === i)).toEqual(Array.from({ length: COUNT }, (_, i) => i + 1));
  });
});
