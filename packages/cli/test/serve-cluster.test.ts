import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, expect, it } from "vitest";
import { jsonBytes, parseJsonBytes, type Frame } from "@arqon/core";
import type { TestClient } from "@arqon/server/testing";
import { describeWithNats, startNatsServer } from "@arqon/nats/testing";
import { connectClient } from "./helpers/clients.js";

const SECRET = "serve-cluster-secret-0123456789abcdef";
const OPERATOR_KEY = "serve-cluster-operator-key-0123456789";
const root = fileURLToPath(new URL("../../..", import.meta.url));
const cli = path.join(root, "packages/cli/src/cli.ts");

describeWithNats("arqon serve --nats / --workers", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** Starts the real CLI (through tsx) and resolves with the WebSocket URL it prints. */
  async function serve(args: string[]): Promise<{ url: string; child: ChildProcess; output: () => string }> {
    const dir = mkdtempSync(path.join(tmpdir(), "arqon-cluster-"));
    const child = spawn(process.execPath, ["--conditions=arqon-source", "--import", "tsx", cli, "serve", "--port", "0", "--data-dir", dir, ...args], {
      cwd: root,
      env: { ...process.env, ARQON_JWT_SECRET: SECRET, ARQON_OPERATOR_KEY: OPERATOR_KEY, ARQON_LOG_LEVEL: "warn", ARQON_LOG_FORMAT: "json" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    cleanups.push(async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      const match = /WebSocket\s+(ws:\/\/\S+)/.exec(out);
      if (match) return { url: match[1]!, child, output: () => out };
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`serve did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A real ws client (the gateway's TestClient) for `sub`, after its welcome; closed after the test. */
  async function client(url: string, sub: string): Promise<TestClient> {
    return connectClient(url, SECRET, { sub, tenant: "acme" }, (c) => cleanups.push(async () => void c.ws.close()), 10_000);
  }

  it("serve cluster - two worker processes share the port and the rooms through NATS; /status shows the NATS link", async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.stop());
    const { url, output } = await serve(["--nats", nats.url, "--workers", "2"]);
    // One banner, from the primary, once both workers listen (a worker's own banner let clients in too early).
    expect(output().match(/ArqonBus gateway listening/g)).toEqual(["ArqonBus gateway listening"]);

    // Connections alternate between the workers (node:cluster round-robin). A message id starts with the id of the
    // node that accepted the publish, so one publish per client shows which worker serves it.
    const clients = [];
    for (let i = 0; i < 4; i++) clients.push(await client(url, `u${i}`));
    const nodes = new Set<string>();
    for (const c of clients) {
      const ack = await c.request({ type: "publish", room: "probe", payload: jsonBytes(0) });
      nodes.add(ack.id!.slice(0, ack.id!.lastIndexOf("-")));
    }
    expect(nodes.size).toBe(2);

    for (const c of clients) expect((await c.request({ type: "subscribe", room: "lobby" })).type).toBe("subscribed");
    for (let i = 1; i <= 5; i++) {
      const ack = await clients[0]!.request({ type: "publish", room: "lobby", payload: jsonBytes({ i }) });
      expect(ack.type).toBe("ack");
      expect(ack.offset).toBe(i);
    }
    for (const c of clients.slice(1)) {
      await c.waitFor((f) => f.type === "message" && (parseJsonBytes(f.payload!) as { i: number }).i === 5, { timeoutMs: 10_000 });
      const got = c.frames.filter((f) => f.type === "message").map((f) => (parseJsonBytes(f.payload!) as { i: number }).i);
      expect(got).toEqual([1, 2, 3, 4, 5]);
    }

    const status = (await (await fetch(url.replace("ws://", "http://").replace(/\/ws$/, "/status"), { headers: { authorization: `Bearer ${OPERATOR_KEY}` } })).json()) as Record<string, unknown>;
    expect(status).toMatchObject({ status: "ok", cluster: { name: "nats", state: "connected" }, storage: { backend: "nats-jetstream" } });
  });

  it("serve cluster - NATS down: /ready says 503 and publishes fail with ARQ_BACKEND_UNAVAILABLE; it recovers by itself", async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.stop());
    const { url } = await serve(["--nats", nats.url]);
    const alice = await client(url, "alice");
    expect((await alice.request({ type: "publish", room: "r", payload: jsonBytes(1) })).type).toBe("ack");
    const http = url.replace("ws://", "http://").replace(/\/ws$/, "");

    await nats.kill();
    const deadline = Date.now() + 10_000;
    let ready = 200;
    while (ready === 200 && Date.now() < deadline) {
      ready = (await fetch(`${http}/ready`)).status;
      if (ready === 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ready).toBe(503);
    const refused = await alice.request({ type: "publish", room: "r", payload: jsonBytes(2) });
    expect(refused.type).toBe("error");
    expect(refused.error?.code).toBe("ARQ_BACKEND_UNAVAILABLE");

    await nats.start();
    const back = Date.now() + 15_000;
    let ack: Frame | undefined;
    while (Date.now() < back) {
      const reply = await alice.request({ type: "publish", room: "r", payload: jsonBytes(3) });
      if (reply.type === "ack") {
        ack = reply;
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(ack?.offset).toBe(2);
    expect((await fetch(`${http}/ready`)).status).toBe(200);
  });

  it("serve cluster - --workers without --nats is refused", async () => {
    const child = spawn(process.execPath, ["--conditions=arqon-source", "--import", "tsx", cli, "serve", "--workers", "2"], {
      cwd: root,
      env: { ...process.env, ARQON_JWT_SECRET: SECRET, ARQON_LOG_LEVEL: "silent" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    expect(code).toBe(2);
    expect(err).toContain("--workers needs --nats");
  });
});
