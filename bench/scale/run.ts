/**
 * Scale benchmark: many WebSocket connections to ArqonBus gateway processes joined by NATS, clients in several
 * processes. Measures connection setup rate, gateway RSS per idle connection, and the time for one broadcast to reach
 * every connection. Needs `nats-server` on the PATH (or ARQON_NATS_SERVER).
 *
 *   node --conditions=arqon-source --import tsx bench/scale/run.ts                        # small: 2 gateways, 2,000
 *   node --conditions=arqon-source --import tsx bench/scale/run.ts --gateways 6 --client-procs 6 --connections 100000
 *
 * Each process can hold ~19,900 sockets here (`ulimit -n` 20,000): keep connections / gateways and
 * connections / client-procs below that.
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { SignJWT } from "jose";

const { values } = parseArgs({
  options: {
    gateways: { type: "string", default: "2" },
    "client-procs": { type: "string", default: "2" },
    connections: { type: "string", default: "2000" },
    "in-flight": { type: "string", default: "200" },
    broadcasts: { type: "string", default: "5" },
    out: { type: "string" },
  },
});
const gateways = Number(values.gateways);
const clientProcs = Number(values["client-procs"]);
const connections = Number(values.connections);
const inFlight = Number(values["in-flight"]);
const broadcasts = Number(values.broadcasts);
const here = fileURLToPath(new URL(".", import.meta.url));
const execArgv = ["--conditions=arqon-source", "--import", "tsx", "--expose-gc"];
const now = () => performance.timeOrigin + performance.now();
const children: ChildProcess[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function next<T>(child: ChildProcess, type: string, timeoutMs = 600_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${type}" from pid ${child.pid} in ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (msg: { type: string }) => {
      if (msg.type !== type) return;
      clearTimeout(timer);
      child.off("message", onMessage);
      resolve(msg as T);
    };
    child.on("message", onMessage);
  });
}

async function main(): Promise<void> {
  const storeDir = mkdtempSync(join(tmpdir(), "arqon-scale-nats-"));
  const natsPort = await freePort();
  const nats = spawn(process.env.ARQON_NATS_SERVER ?? "nats-server", ["-js", "-a", "127.0.0.1", "-p", String(natsPort), "-sd", storeDir], {
    stdio: "ignore",
  });
  children.push(nats);
  await new Promise((r) => setTimeout(r, 500));
  const natsUrl = `nats://127.0.0.1:${natsPort}`;
  const secret = "scale-bench-secret-0123456789abcdef";

  const gws: ChildProcess[] = [];
  const urls: string[] = [];
  for (let i = 0; i < gateways; i++) {
    const gw = fork(join(here, "gateway.ts"), [], {
      execArgv,
      env: { ...process.env, ARQON_NATS_URL: natsUrl, ARQON_SECRET: secret, ARQON_LOG_LEVEL: "warn" },
    });
    children.push(gw);
    gws.push(gw);
    const { port } = await next<{ port: number }>(gw, "ready", 60_000);
    urls.push(`ws://127.0.0.1:${port}/ws`);
  }
  const rss = async () => Promise.all(gws.map(async (gw) => {
    const r = next<{ rss: number; connections: number }>(gw, "rss");
    gw.send({ type: "rss" });
    return r;
  }));
  const before = await rss();

  const token = await new SignJWT({ tenant: "bench", caps: { sub: ["*"], pub: ["*"], presence: [] } })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("load")
    .setIssuedAt()
    .setExpirationTime("2h")
    .sign(new TextEncoder().encode(secret));

  const clients: ChildProcess[] = [];
  for (let i = 0; i < clientProcs; i++) {
    const c = fork(join(here, "clients.ts"), [], { execArgv: ["--conditions=arqon-source", "--import", "tsx"] });
    children.push(c);
    clients.push(c);
  }
  const t0 = now();
  const per = Math.ceil(connections / clientProcs);
  const connected = await Promise.all(
    clients.map((c, i) => {
      const r = next<{ ms: number; failed: number; open: number; reasons: string[] }>(c, "connected");
      // Each client process starts at another gateway, so connections spread evenly.
      const order = urls.map((_, k) => urls[(k + i) % urls.length]!);
      c.send({ type: "start", urls: order, count: Math.min(per, connections - per * i), inFlight, token });
      return r;
    }),
  );
  const setupMs = now() - t0;
  const open = connected.reduce((s, c) => s + c.open, 0);
  const failed = connected.reduce((s, c) => s + c.failed, 0);
  const reasons = connected.flatMap((c) => c.reasons).slice(0, 5);
  if (reasons.length > 0) console.log(`failures (first ${reasons.length}): ${reasons.join(" | ")}`);
  await new Promise((r) => setTimeout(r, 3000));
  const after = await rss();
  const perConnection = after.map((a, i) => (a.rss - before[i]!.rss) / Math.max(1, a.connections));

  const times: number[] = [];
  const reached: number[] = [];
  for (let b = 0; b < broadcasts; b++) {
    const t = b + 1;
    await Promise.all(clients.map((c) => {
      const r = next(c, "expecting");
      c.send({ type: "expect", t });
      return r;
    }));
    const arrivals = clients.map((c) => next<{ count: number; lastAt: number }>(c, "arrived", 30_000));
    const sentAt = now();
    gws[b % gws.length]!.send({ type: "publish", t });
    const got = await Promise.all(arrivals);
    reached.push(got.reduce((s, g) => s + g.count, 0));
    times.push(Math.max(...got.map((g) => g.lastAt)) - sentAt);
    await new Promise((r) => setTimeout(r, 500));
  }

  const kb = (bytes: number) => (bytes / 1024).toFixed(2);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const result = {
    gateways,
    clientProcs,
    connections,
    open,
    failed,
    failureSamples: reasons,
    setupMs: Math.round(setupMs),
    setupPerSecond: Math.round((open / setupMs) * 1000),
    gatewayRssMb: after.map((a) => Math.round(a.rss / 1048576)),
    rssPerIdleConnectionKb: perConnection.map((p) => Number(kb(p))),
    broadcastMs: times.map((t) => Math.round(t * 10) / 10),
    broadcastReached: reached,
    broadcastMedianMs: Math.round(median(times) * 10) / 10,
  };
  console.log(`| connections open / asked | ${open} / ${connections} (${failed} failed) over ${gateways} gateways, ${clientProcs} client processes |`);
  console.log(`| connection setup | ${result.setupPerSecond}/s (${result.setupMs} ms for all, subscribe included) |`);
  console.log(`| gateway RSS per idle connection | ${result.rssPerIdleConnectionKb.join(", ")} KB |`);
  console.log(`| one broadcast to all | median ${result.broadcastMedianMs} ms (${result.broadcastMs.join(", ")}; reached ${reached.join(", ")}) |`);
  const out = values.out ?? join(here, "..", "results", `scale-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  mkdirSync(join(out, ".."), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
  console.log(`results: ${out}`);

  for (const c of clients) c.send({ type: "stop" });
  await Promise.all(gws.map(async (gw) => {
    const exited = new Promise((r) => gw.once("exit", r));
    gw.send({ type: "stop" });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  }));
  nats.kill("SIGTERM");
  await new Promise((r) => nats.once("exit", r));
  rmSync(storeDir, { recursive: true, force: true });
}

main()
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
