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
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
    "source-ips": { type: "string", default: "1" },
    "local-ports": { type: "string" },
    "semi-space": { type: "string" },
    "connect-deadline-s": { type: "string", default: "600" },
    "deadline-s": { type: "string", default: "1200" },
    "idle-s": { type: "string", default: "5" },
    "heapsnap-dir": { type: "string" },
    presence: { type: "boolean", default: false },
    /** The wire protocol the clients ask ArqonBus for: 1.1 (the SDKs' default, compact live frames) or 1.0. */
    protocol: { type: "string", default: "1.1" },
    system: { type: "string", default: "arqon" },
    "ping-interval-s": { type: "string" },
    "profile-dir": { type: "string" },
    out: { type: "string" },
  },
});
const system = values.system;
if (system !== "arqon" && system !== "floor" && system !== "floor-arqon") {
  throw new Error(`--system must be arqon, floor or floor-arqon, not "${system}"`);
}
/** The floor's processes (bare `ws`, no bus): `floor` with its own small frame, `floor-arqon` with ArqonBus's. */
const floorLike = system !== "arqon";
const gateways = Number(values.gateways);
const clientProcs = Number(values["client-procs"]);
const connections = Number(values.connections);
const inFlight = Number(values["in-flight"]);
const broadcasts = Number(values.broadcasts);
const sourceIps = Number(values["source-ips"]);
const connectDeadlineMs = Number(values["connect-deadline-s"]) * 1000;
const deadlineMs = Number(values["deadline-s"]) * 1000;
const idleMs = Number(values["idle-s"]) * 1000;
const localPortBase = values["local-ports"] ? Number(values["local-ports"]) : 0;
if (localPortBase && localPortBase + Math.ceil(Number(values.connections) / Number(values["client-procs"])) * Math.ceil(Number(values["client-procs"]) / sourceIps) > 32768) {
  throw new Error("--local-ports: the port ranges would reach the ephemeral range (32768+); use a lower base or more --source-ips");
}
const here = fileURLToPath(new URL(".", import.meta.url));
const execArgv = ["--conditions=arqon-source", "--import", "tsx", "--expose-gc"];
if (values["semi-space"]) execArgv.push(`--max-semi-space-size=${values["semi-space"]}`);
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

/** Resident memory of a process from /proc (Linux), in bytes; 0 when unreadable. */
function procRss(pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** CPU time (user + system) a process has used, in seconds, from /proc (Linux); 0 when unreadable. */
function procCpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

interface Mem {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  connections: number;
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const log = (line: string) => console.log(`[${((Date.now() - startedAt) / 1000).toFixed(1)} s] ${line}`);
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
    const gw = fork(join(here, floorLike ? "floor-gateway.ts" : "gateway.ts"), [], {
      execArgv,
      env: {
        ...process.env,
        ARQON_NATS_URL: natsUrl,
        ARQON_SECRET: secret,
        ARQON_LOG_LEVEL: "warn",
        ARQON_SCALE_PRESENCE: values.presence ? "1" : "0",
        ARQON_SCALE_PING_MS: values["ping-interval-s"] ? String(Number(values["ping-interval-s"]) * 1000) : "",
        ARQON_SCALE_FRAME: system === "floor-arqon" ? "arqon" : "",
        ARQON_SCALE_PROTOCOL: values.protocol,
      },
    });
    children.push(gw);
    gws.push(gw);
    const { port } = await next<{ port: number }>(gw, "ready", 60_000);
    urls.push(`ws://127.0.0.1:${port}/ws${values.protocol === "1.1" ? "?protocol=1.1" : ""}`);
  }
  const mem = async () => Promise.all(gws.map(async (gw) => {
    const r = next<Mem>(gw, "rss");
    gw.send({ type: "rss" });
    return r;
  }));
  await new Promise((r) => setTimeout(r, 1000));
  const before = await mem();
  const heapsnap = async (name: string) => {
    if (!values["heapsnap-dir"]) return;
    const r = next(gws[0]!, "heapsnap");
    gws[0]!.send({ type: "heapsnap", file: join(values["heapsnap-dir"], `${name}.heapsnapshot`) });
    await r;
  };
  await heapsnap("before");
  const natsRssBefore = procRss(nats.pid);
  log(`${gateways} gateways up (RSS ${before.map((b) => Math.round(b.rss / 1048576)).join(", ")} MB), NATS RSS ${Math.round(natsRssBefore / 1048576)} MB`);

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
  const progress = new Map<ChildProcess, { open: number; failed: number }>();
  for (const c of clients) {
    c.on("message", (msg: { type: string; open?: number; failed?: number }) => {
      if (msg.type === "progress") progress.set(c, { open: msg.open!, failed: msg.failed! });
    });
  }
  const progressTimer = setInterval(() => {
    let open = 0;
    let failed = 0;
    for (const p of progress.values()) {
      open += p.open;
      failed += p.failed;
    }
    log(`connecting: ${open} open, ${failed} failed`);
  }, 10_000);
  const t0 = now();
  const per = Math.ceil(connections / clientProcs);
  const connected = await Promise.all(
    clients.map((c, i) => {
      const r = next<{ ms: number; failed: number; retried: number; open: number; reasons: Record<string, number> }>(c, "connected", connectDeadlineMs + 90_000);
      // Each client process starts at another gateway, so connections spread evenly.
      const order = urls.map((_, k) => urls[(k + i) % urls.length]!);
      c.send({
        type: "start",
        urls: order,
        count: Math.min(per, connections - per * i),
        inFlight,
        token,
        deadlineAt: Date.now() + connectDeadlineMs,
        localAddress: sourceIps > 1 || localPortBase ? `127.0.0.${1 + (i % sourceIps)}` : undefined,
        // Processes sharing a source address get disjoint port ranges.
        localPort: localPortBase ? localPortBase + Math.floor(i / sourceIps) * per : undefined,
      });
      return r;
    }),
  );
  clearInterval(progressTimer);
  const setupMs = now() - t0;
  const open = connected.reduce((s, c) => s + c.open, 0);
  const failed = connected.reduce((s, c) => s + c.failed, 0);
  const retried = connected.reduce((s, c) => s + c.retried, 0);
  const failureReasons: Record<string, number> = {};
  for (const c of connected) for (const [k, v] of Object.entries(c.reasons)) failureReasons[k] = (failureReasons[k] ?? 0) + v;
  log(`connected ${open} / ${connections} in ${Math.round(setupMs)} ms (${failed} failed, ${retried} handshakes retried${failed || retried ? `: ${JSON.stringify(failureReasons)}` : ""})`);
  await new Promise((r) => setTimeout(r, idleMs));
  const after = await mem();
  await heapsnap("after");
  const natsRssAfter = procRss(nats.pid);
  const perConn = (a: Mem, b: Mem, k: keyof Mem) => (a[k] - b[k]) / Math.max(1, a.connections);
  const sum = (xs: Mem[], k: keyof Mem) => xs.reduce((s, x) => s + x[k], 0);
  const totalConns = sum(after, "connections");
  log(`idle ${idleMs / 1000} s: gateway RSS ${after.map((a) => Math.round(a.rss / 1048576)).join(", ")} MB; NATS RSS ${Math.round(natsRssAfter / 1048576)} MB`);

  // --profile-dir: CPU profiles of gateway 0 and client process 0 over the broadcasts.
  const profiled = values["profile-dir"] ? [gws[0]!, clients[0]!] : [];
  for (const p of profiled) p.send({ type: "profile-start" });
  const times: number[] = [];
  const reached: number[] = [];
  const cpuOf = (procs: ChildProcess[]) => procs.reduce((sum, p) => sum + procCpuSeconds(p.pid), 0);
  const cpuSplit: Array<{ gateways: number; clients: number; nats: number }> = [];
  const latencyStats: { p50: number; p99: number; max: number }[] = [];
  for (let b = 0; b < broadcasts; b++) {
    const t = b + 1;
    await Promise.all(clients.map((c) => {
      const r = next(c, "expecting");
      c.send({ type: "expect", t });
      return r;
    }));
    const arrivals = clients.map((c) => next<{ count: number; lastAt: number; latencies: number[] }>(c, "arrived", 30_000));
    const cpu0 = { gateways: cpuOf(gws), clients: cpuOf(clients), nats: cpuOf([nats]) };
    const sentAt = now();
    // ArqonBus: one gateway publishes, NATS carries it to the others. Floor: no bus, every process is told at once.
    if (floorLike) for (const gw of gws) gw.send({ type: "publish", t, at: sentAt });
    else gws[b % gws.length]!.send({ type: "publish", t, at: sentAt });
    const got = await Promise.all(arrivals);
    const r2 = (x: number) => Math.round(x * 100) / 100;
    cpuSplit.push({ gateways: r2(cpuOf(gws) - cpu0.gateways), clients: r2(cpuOf(clients) - cpu0.clients), nats: r2(cpuOf([nats]) - cpu0.nats) });
    reached.push(got.reduce((s, g) => s + g.count, 0));
    times.push(Math.max(...got.map((g) => g.lastAt)) - sentAt);
    const lat = got.flatMap((g) => g.latencies).sort((x, y) => x - y);
    latencyStats.push({ p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), max: lat[lat.length - 1] ?? NaN });
    log(
      `broadcast ${t}: reached ${reached[b]}, last after ${times[b]!.toFixed(1)} ms (p50 ${latencyStats[b]!.p50} / p99 ${latencyStats[b]!.p99} / max ${latencyStats[b]!.max} ms); ` +
        `CPU s gateways ${cpuSplit[b]!.gateways}, clients ${cpuSplit[b]!.clients}, NATS ${cpuSplit[b]!.nats}`,
    );
    await new Promise((r) => setTimeout(r, 1000));
  }
  await Promise.all(profiled.map(async (p, i) => {
    const file = join(values["profile-dir"]!, `${i === 0 ? "gateway" : "clients"}.cpuprofile`);
    const r = next(p, "profiled", 60_000);
    p.send({ type: "profile-stop", file });
    await r;
    log(`CPU profile: ${file}`);
  }));
  const closed = await Promise.all(clients.map((c) => {
    const r = next<{ closedAfterOpen: number; codes: Record<string, number> }>(c, "closed", 10_000);
    c.send({ type: "closed" });
    return r;
  }));
  const closedAfterOpen = closed.reduce((s, c) => s + c.closedAfterOpen, 0);

  const kb = (bytes: number) => Math.round((bytes / 1024) * 100) / 100;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const result = {
    at: new Date().toISOString(),
    system,
    gateways,
    clientProcs,
    connections,
    inFlight,
    sourceIps,
    localPortBase,
    presence: values.presence,
    pingIntervalS: values["ping-interval-s"] ? Number(values["ping-interval-s"]) : 25,
    protocol: values.protocol,
    gatewayExecArgv: execArgv.slice(3),
    open,
    failed,
    retried,
    failureReasons,
    closedAfterOpen,
    closeCodes: closed.map((c) => c.codes),
    setupMs: Math.round(setupMs),
    setupPerSecond: Math.round((open / setupMs) * 1000),
    gatewayConnections: after.map((a) => a.connections),
    gatewayRssBeforeMb: before.map((b) => Math.round(b.rss / 1048576)),
    gatewayRssMb: after.map((a) => Math.round(a.rss / 1048576)),
    rssPerIdleConnectionKb: after.map((a, i) => kb(perConn(a, before[i]!, "rss"))),
    heapPerIdleConnectionKb: after.map((a, i) => kb(perConn(a, before[i]!, "heapUsed"))),
    externalPerIdleConnectionKb: after.map((a, i) => kb(perConn(a, before[i]!, "external"))),
    totalRssPerIdleConnectionKb: kb((sum(after, "rss") - sum(before, "rss")) / Math.max(1, totalConns)),
    totalHeapPerIdleConnectionKb: kb((sum(after, "heapUsed") - sum(before, "heapUsed")) / Math.max(1, totalConns)),
    totalGatewayRssMb: Math.round(sum(after, "rss") / 1048576),
    natsRssBeforeMb: Math.round(natsRssBefore / 1048576),
    natsRssMb: Math.round(natsRssAfter / 1048576),
    broadcastMs: times.map((t) => Math.round(t * 10) / 10),
    broadcastReached: reached,
    broadcastLatencyMs: latencyStats,
    broadcastCpuSeconds: cpuSplit,
    broadcastMedianMs: Math.round(median(times) * 10) / 10,
  };
  console.log(`system: ${system}`);
  console.log(`| connections open / asked | ${open} / ${connections} (${failed} failed, ${retried} retried, ${closedAfterOpen} closed after open) over ${gateways} gateways, ${clientProcs} client processes |`);
  console.log(`| connection setup | ${result.setupPerSecond}/s (${result.setupMs} ms for all, subscribe included) |`);
  console.log(`| gateway RSS per idle connection | total ${result.totalRssPerIdleConnectionKb} KB; per gateway ${result.rssPerIdleConnectionKb.join(", ")} KB |`);
  console.log(`| gateway heap per idle connection | total ${result.totalHeapPerIdleConnectionKb} KB; per gateway ${result.heapPerIdleConnectionKb.join(", ")} KB |`);
  console.log(`| gateway RSS | ${result.totalGatewayRssMb} MB in all (${result.gatewayRssMb.join(", ")}) |`);
  console.log(`| NATS server RSS | ${result.natsRssBeforeMb} MB before, ${result.natsRssMb} MB connected |`);
  console.log(`| one broadcast to all | last arrival median ${result.broadcastMedianMs} ms (${result.broadcastMs.join(", ")}; reached ${reached.join(", ")}) |`);
  console.log(`| per-client latency p50/p99/max | ${latencyStats.map((l) => `${l.p50}/${l.p99}/${l.max}`).join("; ")} ms |`);
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

function killAll(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

// Hard deadline: whatever happens, every child is killed and the run ends.
const hardStop = setTimeout(() => {
  console.error(`deadline of ${deadlineMs / 1000} s reached: killing every child`);
  killAll();
  process.exit(2);
}, deadlineMs);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

main()
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => {
    clearTimeout(hardStop);
    killAll();
  });
