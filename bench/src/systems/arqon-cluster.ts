import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { procRssBytes } from "../proc.js";
import { BENCH_LIMITS, makeFactory } from "./arqon.js";
import type { RunningServer, ServerStartOptions, SystemAdapter } from "./types.js";

/**
 * ArqonBus as `arqon serve --nats <url> --workers <n>` runs it: the CLI (from source) forks n gateway processes that
 * share one port through node:cluster and each other's rooms through a `nats-server -js` the server process starts
 * (bus, history on JetStream, presence and state on KV). The same limits as `arqon-json` (a config file), the same
 * JSON protocol 1.1 clients. The CPU and system calls counted as the server's are those of the CLI's primary, its
 * workers and nats-server together. What it answers: whether spreading the gateway over both cores (Centrifugo's
 * advantage in the many-rooms workload) pays on this machine, where a room's members land on different workers.
 */

const root = fileURLToPath(new URL("../../..", import.meta.url));
const cli = path.join(root, "packages/cli/src/cli.ts");

/** The processes the server is made of: the CLI, its workers (children, from /proc) and NATS. */
function treeOf(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // Not Linux, or the process is gone: the primary alone.
  }
  return [pid, ...children];
}

async function startCluster(opts: ServerStartOptions, workers: number): Promise<RunningServer> {
  const { startNatsServer } = await import("@arqon/nats/testing");
  const nats = await startNatsServer();
  const dir = mkdtempSync(path.join(tmpdir(), "arqon-bench-cluster-"));
  const config = path.join(dir, "arqon.config.json");
  writeFileSync(config, JSON.stringify({ limits: BENCH_LIMITS }));
  const args = ["--conditions=arqon-source", "--import", "tsx", cli, "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dir];
  args.push("--config", config, "--nats", nats.url);
  if (workers > 1) args.push("--workers", String(workers));
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ARQON_JWT_SECRET: opts.secret, ARQON_LOG_LEVEL: process.env.ARQON_LOG_LEVEL ?? "warn", ARQON_LOG_FORMAT: "json" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr!.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  let port: number | undefined;
  const deadline = Date.now() + 60_000;
  while (port === undefined) {
    const match = /WebSocket\s+ws:\/\/[^:\s]+:(\d+)/.exec(out);
    if (match) port = Number(match[1]);
    else if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`arqon serve did not start:\n${out}`);
    } else await new Promise((r) => setTimeout(r, 50));
  }
  // Every worker listens before the banner is printed, so the process tree is complete now.
  const pids = [...treeOf(child.pid!), nats.pid!];
  return {
    port,
    pid: child.pid,
    pids: () => pids,
    memory: async () => ({ rss: pids.reduce((sum, pid) => sum + procRssBytes(pid), 0), heapUsed: NaN }),
    close: stop,
  };
}

function clusterSystem(id: string, workers: number, label: string): SystemAdapter {
  return {
    id,
    label,
    clientNote: "ws clients, JSON text frames (?codec=json&protocol=1.1); server CPU = the CLI, its workers and nats-server",
    startServer: (opts) => startCluster(opts, workers),
    createClientFactory: makeFactory("json", "1.1"),
    async prepare() {
      const { natsServerVersion } = await import("@arqon/nats/testing");
      return natsServerVersion() === null ? "nats-server is not on the PATH (ARQON_NATS_SERVER)" : undefined;
    },
  };
}

/** One `arqon serve --nats` process: what NATS costs a single gateway, the reference for the cluster below. */
export const arqonNats = clusterSystem("arqon-json-nats", 1, "ArqonBus (JSON, arqon serve on NATS)");

/** `arqon serve --nats --workers 2`: two gateway processes on the two cores, joined through NATS. */
export const arqonCluster2 = clusterSystem("arqon-json-workers2", 2, "ArqonBus (JSON, arqon serve --workers 2 on NATS)");
