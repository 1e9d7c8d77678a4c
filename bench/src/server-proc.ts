import { writeFileSync } from "node:fs";
import { Session as InspectorSession } from "node:inspector/promises";
import { monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram } from "node:perf_hooks";
import { writeHeapSnapshot } from "node:v8";
import { serveIpc } from "./ipc.js";
import { procCpuMs, procSyscalls } from "./proc.js";
import { getSystem } from "./systems/index.js";
import { sleep } from "./clock.js";

/**
 * A system under test, alone in its process. argv: <system id>; env ARQON_BENCH_SECRET. Reports its port when ready
 * and answers `mem` (RSS and heap after full GCs), `cpu` (CPU time and share since the last call), `snapshot` and
 * `profile` (a CPU profile of one window: start, then stop with a file), `allocations` (the same for an allocation
 * sample) and `exit`. A system whose server runs in a process of its own (`RunningServer.pid`: Centrifugo; or in
 * several, `RunningServer.pids`: `arqon serve --workers`) gets those processes' CPU time and memory in `cpu` and
 * `mem`; the inspector commands (`snapshot`, `profile`, `allocations`) refuse it, since they would only see this
 * Node process.
 */
const system = getSystem(process.argv[2] ?? "");
const server = await system.startServer({ secret: process.env.ARQON_BENCH_SECRET ?? "" });
const externalPid = server.pid;
/** The processes that serve: this one, the server's own, or all of a server made of several (`RunningServer.pids`). */
const servingPids = server.pids?.() ?? [externalPid ?? process.pid];
/** CPU time (µs, as process.cpuUsage) of the processes that serve. */
const cpuUsage = (): { user: number; system: number } => {
  if (externalPid === undefined) return process.cpuUsage();
  let user = 0;
  let system = 0;
  for (const pid of servingPids) {
    const c = procCpuMs(pid);
    user += c.userMs * 1000;
    system += c.systemMs * 1000;
  }
  return { user, system };
};
/** Read and write system calls of the processes that serve, summed. */
const syscalls = (): { reads: number; writes: number } => {
  let reads = 0;
  let writes = 0;
  for (const pid of servingPids) {
    const s = procSyscalls(pid);
    reads += s.reads;
    writes += s.writes;
  }
  return { reads, writes };
};
const notHere = (what: string): void => {
  if (externalPid !== undefined) throw new Error(`${what}: ${system.id} serves from process ${externalPid}, not this Node process`);
};
let lastCpu = cpuUsage();
let lastSys = syscalls();
let lastAt = performance.now();

const gc = (globalThis as { gc?: () => void }).gc;
let inspector: InspectorSession | undefined;
let gcObserver: PerformanceObserver | undefined;
let loopDelay: IntervalHistogram | undefined;
const gcPauses: Array<{ at: number; ms: number; kind: string }> = [];
const GC_KINDS: Record<number, string> = { 1: "scavenge", 2: "mark-compact", 4: "incremental", 8: "weak-callbacks" };
let allocInspector: InspectorSession | undefined;

serveIpc(
  {
    async mem() {
      if (server.memory) {
        const m = await server.memory();
        return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: NaN, external: NaN, arrayBuffers: NaN };
      }
      for (let i = 0; i < 3; i++) {
        gc?.();
        await sleep(100);
      }
      const m = process.memoryUsage();
      return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
    },
    /** Writes a V8 heap snapshot (after GC) to `file`, for `heap-summary.ts`. */
    async snapshot(args: { file: string }) {
      notHere("snapshot");
      gc?.();
      await sleep(100);
      return writeHeapSnapshot(args.file);
    },
    cpu() {
      const now = cpuUsage();
      const c = { user: now.user - lastCpu.user, system: now.system - lastCpu.system };
      const t = performance.now();
      const cpuMs = (c.user + c.system) / 1000;
      const share = cpuMs / (t - lastAt);
      // Read and write system calls of the serving process in the same window (one socket write per delivery at
      // most, fewer when a server coalesces; a few are IPC and event-loop wake-ups).
      const sys = syscalls();
      const readCalls = sys.reads - lastSys.reads;
      const writeCalls = sys.writes - lastSys.writes;
      lastCpu = now;
      lastSys = sys;
      lastAt = t;
      return { share, cpuMs, userMs: c.user / 1000, systemMs: c.system / 1000, readCalls, writeCalls };
    },
    /**
     * Watches the main thread between `start` and `stop`: every GC pause (start on the shared clock, duration, kind,
     * from a `gc` PerformanceObserver) and the event loop's delay (monitorEventLoopDelay, 5 ms resolution).
     */
    watch(args: { action: "start" | "stop" }) {
      notHere("watch");
      if (args.action === "start") {
        gcPauses.length = 0;
        gcObserver?.disconnect();
        gcObserver = new PerformanceObserver((list) => {
          for (const e of list.getEntries()) {
            const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
            gcPauses.push({ at: performance.timeOrigin + e.startTime, ms: e.duration, kind: GC_KINDS[kind] ?? String(kind) });
          }
        });
        gcObserver.observe({ entryTypes: ["gc"] });
        loopDelay?.disable();
        loopDelay = monitorEventLoopDelay({ resolution: 5 });
        loopDelay.enable();
        return true;
      }
      gcObserver?.disconnect();
      gcObserver = undefined;
      const h = loopDelay;
      h?.disable();
      loopDelay = undefined;
      const ms = (ns: number | undefined) => (ns === undefined || !Number.isFinite(ns) ? NaN : ns / 1e6);
      return { gc: gcPauses.splice(0), loop: { p50: ms(h?.percentile(50)), p99: ms(h?.percentile(99)), max: ms(h?.max) } };
    },
    /** Profiles the main thread between `start` and `stop` (written to `file`), unlike --cpu-prof's whole life. */
    async profile(args: { action: "start"; intervalUs?: number } | { action: "stop"; file: string }) {
      notHere("profile");
      if (args.action === "start") {
        inspector = new InspectorSession();
        inspector.connect();
        await inspector.post("Profiler.enable");
        await inspector.post("Profiler.setSamplingInterval", { interval: args.intervalUs ?? 100 });
        await inspector.post("Profiler.start");
        return true;
      }
      if (!inspector) throw new Error("profile: not started");
      const { profile } = await inspector.post("Profiler.stop");
      inspector.disconnect();
      writeFileSync(args.file, JSON.stringify(profile));
      return args.file;
    },
    /**
     * Samples allocations between `start` and `stop` (written to `file` as a .heapprofile), counting objects that
     * were collected again: what a window allocated, not what survived it (`--heap-prof` keeps only the survivors).
     */
    async allocations(args: { action: "start"; intervalBytes?: number } | { action: "stop"; file: string }) {
      notHere("allocations");
      if (args.action === "start") {
        allocInspector = new InspectorSession();
        allocInspector.connect();
        await allocInspector.post("HeapProfiler.enable");
        await allocInspector.post("HeapProfiler.startSampling", {
          samplingInterval: args.intervalBytes ?? 4096,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: true,
        });
        return true;
      }
      if (!allocInspector) throw new Error("allocations: not started");
      const { profile } = await allocInspector.post("HeapProfiler.stopSampling");
      allocInspector.disconnect();
      allocInspector = undefined;
      writeFileSync(args.file, JSON.stringify(profile));
      return args.file;
    },
    async exit() {
      await Promise.race([server.close().catch(() => undefined), sleep(3000)]);
      setImmediate(() => process.exit(0));
      return true;
    },
  },
  { port: server.port, pid: process.pid },
);
