import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { jsonBytes, parseJsonBytes, roomKey } from "@arqon/core";
import { openEmbeddedStorage } from "../src/storage/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.join(here, "storage-kill-child.ts");
const tsx = createRequire(import.meta.url).resolve("tsx");
const key = roomKey("acme", "orders");

interface Acks {
  history: Array<{ offset: number; epoch: string; n: number }>;
  kv: Array<{ revision: number; n: number }>;
  state: Array<{ version: number; n: number }>;
}

const dirs: string[] = [];
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "arqon-kill-"));
  dirs.push(dir);
  return dir;
}

/** Runs the writer child on `dir` and SIGKILLs it once it acknowledged `killAfter` history appends. */
function writeUntilKilled(dir: string, killAfter: number): Promise<Acks> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--conditions=arqon-source", "--import", tsx, child, dir], {
      cwd: path.join(here, ".."),
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(proc);
    const acks: Acks = { history: [], kv: [], state: [] };
    let buffered = "";
    let stderr = "";
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`writer did not reach ${killAfter} acks within 20 s; stderr: ${stderr}`));
    }, 20_000);
    proc.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    proc.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const [kind, a, b, c] = buffered.slice(0, nl).split(" ");
        buffered = buffered.slice(nl + 1);
        if (kind === "history") acks.history.push({ offset: Number(a), epoch: b!, n: Number(c) });
        if (kind === "kv") acks.kv.push({ revision: Number(a), n: Number(b) });
        if (kind === "state") acks.state.push({ version: Number(a), n: Number(b) });
        if (acks.history.length === killAfter && proc.signalCode === null) proc.kill("SIGKILL");
      }
    });
    proc.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (signal === "SIGKILL") resolve(acks);
      else reject(new Error(`writer exited with ${code} before being killed; stderr: ${stderr}`));
    });
  });
}

describe("storage - kill -9", () => {
  it("storage - every acknowledged write survives kill -9 with the same epoch, offsets gapless", async () => {
    const dir = tempDir();
    const acks = await writeUntilKilled(dir, 300);
    expect(acks.history.length).toBeGreaterThanOrEqual(300);
    const epoch = acks.history[0]!.epoch;
    expect(acks.history.every((a, i) => a.offset === i + 1 && a.n === i + 1 && a.epoch === epoch)).toBe(true);

    const storage = await openEmbeddedStorage({ path: dir });
    try {
      const position = await storage.history.position(key);
      expect(position.epoch).toBe(epoch);
      // The kill may land after a commit whose ack line was not printed yet: at least every acked one is there.
      expect(position.offset).toBeGreaterThanOrEqual(acks.history.length);
      const page = await storage.history.read(key, { limit: 10_000 });
      expect(page.messages.map((m) => m.offset)).toEqual(Array.from({ length: position.offset }, (_, i) => i + 1));
      expect(page.messages.map((m) => (parseJsonBytes(m.payload!) as { n: number }).n)).toEqual(
        Array.from({ length: position.offset }, (_, i) => i + 1),
      );
      expect(page.messages.every((m) => m.epoch === epoch)).toBe(true);

      const resumed = await storage.history.recover(key, { offset: 100, epoch }, 10_000);
      expect(resumed.recovered && resumed.messages.length).toBe(position.offset - 100);

      const again = await storage.history.append(key, { type: "message", payload: jsonBytes({ n: -1 }) }, { idempotencyKey: "order-7" });
      expect(again).toMatchObject({ duplicate: true, offset: 7, epoch });
      const next = await storage.history.append(key, { type: "message", payload: jsonBytes({ n: 0 }) });
      expect(next).toMatchObject({ duplicate: false, offset: position.offset + 1, epoch });

      const lastKv = acks.kv.at(-1)!;
      const kv = await storage.kv.get("orders", "last");
      expect(kv!.revision).toBeGreaterThanOrEqual(lastKv.revision);
      expect((parseJsonBytes(kv!.value) as { n: number }).n).toBeGreaterThanOrEqual(lastKv.n);
      const lastState = acks.state.at(-1)!;
      const [entry] = await storage.state.get(key);
      expect(entry!.version).toBeGreaterThanOrEqual(lastState.version);
      expect(await storage.state.at(key, { revision: lastState.version })).toMatchObject([{ key: "last", version: lastState.version }]);
    } finally {
      await storage.close();
    }
  }, 30_000);

  it("storage - a deleted data directory means a new epoch: the old position gets epoch_mismatch", async () => {
    const dir = tempDir();
    const acks = await writeUntilKilled(dir, 20);
    const old = acks.history.at(-1)!;
    rmSync(dir, { recursive: true, force: true });
    const storage = await openEmbeddedStorage({ path: dir });
    try {
      const position = await storage.history.position(key);
      expect(position.offset).toBe(0);
      expect(position.epoch).not.toBe(old.epoch);
      expect(await storage.history.recover(key, { offset: old.offset, epoch: old.epoch }, 1000)).toEqual({
        recovered: false,
        reason: "epoch_mismatch",
        position,
      });
    } finally {
      await storage.close();
    }
  }, 30_000);
});
