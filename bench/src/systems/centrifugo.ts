import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { get as httpGet } from "node:http";
import { connect as tcpConnect, createServer as createTcpServer, type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { sleep } from "../clock.js";
import { benchRoot } from "../ipc.js";
import { extractTs, TS_MARK } from "../payload.js";
import { procRssBytes } from "../proc.js";
import type { ClientFactory, ClientOptions, RunningServer, ServerStartOptions, SystemAdapter } from "./types.js";

/**
 * Centrifugo v6 (Go), built from the Go module proxy into bench/.cache/ the first time it is needed (`prepare`, in the
 * orchestrator), started by the bench's server process on 127.0.0.1 and a free port with a config file written to a
 * temp dir: its defaults except the options in `centrifugoConfig` (listed in docs/benchmarks.md). Clients are plain
 * `ws` sockets speaking Centrifugo's JSON protocol (client protocol v2): `connect` with an HS256 JWT, `subscribe`,
 * `publish` with the bench payload as `data`. The server merges up to 16 replies and pushes into one WebSocket frame,
 * one JSON object per line, so a client reads every line of a frame; it answers the server's `{}` pings with `{}`.
 */

export const CENTRIFUGO_VERSION = "6.9.1";
const MODULE = "github.com/centrifugal/centrifugo/v6";
/** Release builds set the version with this flag (misc/scripts/package.sh); `go install` alone reports 0.0.0. */
const VERSION_LDFLAGS = `-ldflags=-X ${MODULE}/internal/build.Version=${CENTRIFUGO_VERSION}`;
const BUILD_TIMEOUT_MS = 20 * 60_000;
const WS_PATH = "/connection/websocket";

/** bench/.cache/centrifugo-<version>/ (gitignored); the binary is bin/centrifugo in it. */
export function centrifugoCacheDir(): string {
  return path.join(benchRoot, ".cache", `centrifugo-${CENTRIFUGO_VERSION}`);
}

export function centrifugoBinary(): string {
  return path.join(centrifugoCacheDir(), "bin", "centrifugo");
}

/** `centrifugo version` of a binary: ok when it names the version this adapter is for. */
function checkVersion(bin: string): { ok: boolean; text: string } {
  const r = spawnSync(bin, ["version"], { encoding: "utf8", timeout: 30_000 });
  if (r.error) return { ok: false, text: r.error.message };
  const text = `${r.stdout ?? ""}${r.stderr ?? ""}`.trim();
  return { ok: r.status === 0 && text.includes(`v${CENTRIFUGO_VERSION}`), text };
}

/** The `go install` under way, so an interrupted bench does not leave it running (its process group, by PID). */
let building: ChildProcess | undefined;
function killBuild(): void {
  if (building?.pid && building.exitCode === null) {
    try {
      process.kill(-building.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/**
 * `GOBIN=<cache>/bin go install github.com/centrifugal/centrifugo/v6@v<version>` (module, build and Go caches at their
 * defaults), with progress every 15 s. Resolves to undefined on success or to why it failed.
 */
function goInstall(binDir: string, log: (msg: string) => void): Promise<string | undefined> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn("go", ["install", "-v", VERSION_LDFLAGS, `${MODULE}@v${CENTRIFUGO_VERSION}`], {
      cwd: path.dirname(binDir),
      env: { ...process.env, GOBIN: binDir },
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group: a timeout or an interrupted bench ends `go` and the compilers it started, and nothing else.
      detached: true,
    });
    building = child;
    // An interrupted bench ends the build too (the group does not get the terminal's signals: it is detached).
    const onSignal = (): void => {
      killBuild();
      process.exit(130);
    };
    const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
    process.once("exit", killBuild);
    for (const sig of signals) process.once(sig, onSignal);
    const tail: string[] = [];
    let packages = 0;
    let downloads = 0;
    let last = "";
    const onLine = (line: string): void => {
      if (!line) return;
      if (line.startsWith("go: downloading ")) downloads++;
      else if (!line.includes(" ") && !line.startsWith("#")) packages++;
      last = line;
      tail.push(line);
      if (tail.length > 15) tail.shift();
    };
    let partial = "";
    const onData = (chunk: Buffer): void => {
      const lines = (partial + chunk.toString("utf8")).split("\n");
      partial = lines.pop() ?? "";
      lines.forEach(onLine);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    const progress = setInterval(() => {
      log(`  centrifugo: building, ${Math.round((Date.now() - started) / 1000)} s: ${downloads} modules downloaded, ${packages} packages compiled (last: ${last})`);
    }, 15_000);
    const timer = setTimeout(() => {
      tail.push(`timed out after ${BUILD_TIMEOUT_MS / 60_000} min`);
      killBuild();
    }, BUILD_TIMEOUT_MS);
    const done = (why: string | undefined): void => {
      clearInterval(progress);
      clearTimeout(timer);
      process.removeListener("exit", killBuild);
      for (const sig of signals) process.removeListener(sig, onSignal);
      building = undefined;
      resolve(why);
    };
    child.on("error", (err) => done(err.message));
    child.on("exit", (code, signal) => {
      onLine(partial);
      if (code === 0) {
        log(`  centrifugo: built in ${Math.round((Date.now() - started) / 1000)} s (${packages} packages)`);
        done(undefined);
      } else done(`go install exited with ${code ?? signal}: ${tail.slice(-5).join(" | ")}`);
    });
  });
}

/**
 * Makes sure the Centrifugo binary is in the cache: nothing to do when it is there and reports the right version;
 * otherwise builds it when Go is on the machine. Resolves to the reason when it cannot be had; never throws.
 */
export async function prepareCentrifugo(log: (msg: string) => void): Promise<string | undefined> {
  try {
    const bin = centrifugoBinary();
    const shown = path.relative(process.cwd(), bin) || bin;
    if (existsSync(bin)) {
      const v = checkVersion(bin);
      if (v.ok) {
        log(`centrifugo: ${shown} (${v.text})`);
        return undefined;
      }
      log(`centrifugo: the cached binary answers "${v.text}"; building it again`);
    }
    const go = spawnSync("go", ["version"], { encoding: "utf8", timeout: 30_000 });
    if (go.error || go.status !== 0) {
      const why = go.error ? go.error.message : `${go.stderr ?? ""}`.trim() || `exit ${go.status}`;
      return `Go is not available to build it (go version: ${why})`;
    }
    mkdirSync(path.dirname(bin), { recursive: true });
    log(`centrifugo: building v${CENTRIFUGO_VERSION} with ${go.stdout.trim()} into ${path.dirname(shown)} (go install from the Go module proxy; the first build takes a few minutes)`);
    const failed = await goInstall(path.dirname(bin), log);
    if (failed) return `build failed: ${failed}`;
    const v = checkVersion(bin);
    if (!v.ok) return `the built binary answers "${v.text}" to \`centrifugo version\`, not v${CENTRIFUGO_VERSION}`;
    log(`centrifugo: ${shown} (${v.text})`);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/**
 * The config file: Centrifugo's defaults except these (see docs/benchmarks.md). Channels have no namespace; clients
 * may subscribe and publish to them (no subscribe or publish proxy); history and presence stay off as by default.
 * `debug.enabled` serves Go's pprof endpoints on the same loopback port, used only by the memory measurement to force a
 * GC and read the heap (as the Node servers get `--expose-gc`); no step calls it. `historySize` (not by default; from
 * ARQON_BENCH_CENTRIFUGO_HISTORY): a history of that many publications per channel kept 24 h, as ArqonBus keeps one
 * for every room (1,000 messages, 24 h), to see what history costs Centrifugo.
 */
export function centrifugoConfig(secret: string, port: number, historySize = Number(process.env.ARQON_BENCH_CENTRIFUGO_HISTORY ?? 0)): Record<string, unknown> {
  const history = historySize > 0 ? { history_size: historySize, history_ttl: "24h" } : { history_size: 0, history_ttl: "0s" };
  return {
    http_server: { address: "127.0.0.1", port },
    log: { level: "warn" },
    client: { token: { hmac_secret_key: secret } },
    channel: {
      without_namespace: {
        allow_subscribe_for_client: true,
        allow_publish_for_client: true,
        ...history,
        presence: false,
        join_leave: false,
      },
    },
    http_api: { disabled: true },
    admin: { enabled: false },
    prometheus: { enabled: false },
    usage_stats: { disabled: true },
    debug: { enabled: true },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createTcpServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

function fetchText(port: number, pathAndQuery: string, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host: "127.0.0.1", port, path: pathAndQuery, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString("utf8")) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
  });
}

/** `setpriv --pdeathsig KILL`: the kernel kills Centrifugo if the server process dies without stopping it. */
const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p));

/** Starts Centrifugo on 127.0.0.1 and a free port (three tries, in case another process takes the port first). */
async function startServer(opts: ServerStartOptions): Promise<RunningServer> {
  const bin = centrifugoBinary();
  if (!existsSync(bin)) throw new Error(`${bin} is not built: run the bench with --systems centrifugo once (it builds it)`);
  const dir = mkdtempSync(path.join(os.tmpdir(), "arqon-bench-centrifugo-"));
  // The bench's config only: options a caller's environment would set (CENTRIFUGO_*) are left out.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CENTRIFUGO_")));
  let lastError = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const configFile = path.join(dir, "config.json");
    writeFileSync(configFile, JSON.stringify(centrifugoConfig(opts.secret, port), null, 1));
    const argv = [bin, "--config", configFile];
    const proc = SETPRIV ? spawn(SETPRIV, ["--pdeathsig", "KILL", ...argv], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] }) : spawn(bin, argv.slice(1), { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
    const pid = proc.pid;
    let exited = false;
    const output: string[] = [];
    const forward = (chunk: Buffer): void => {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (!line) continue;
        output.push(line);
        if (output.length > 20) output.shift();
        process.stderr.write(`[centrifugo ${pid}] ${line}\n`);
      }
    };
    proc.stdout!.on("data", forward);
    proc.stderr!.on("data", forward);
    const gone = new Promise<void>((resolve) => {
      proc.once("exit", () => resolve());
      // A binary that cannot be started at all: 'error' and no 'exit'.
      proc.once("error", (err) => {
        output.push(err.message);
        resolve();
      });
    });
    void gone.then(() => (exited = true));
    const killHard = (): void => {
      if (!exited && pid) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    };
    process.once("exit", killHard);
    const deadline = Date.now() + 20_000;
    let ready = false;
    while (!exited && Date.now() < deadline) {
      if (await canConnect(port)) {
        ready = !exited;
        break;
      }
      await sleep(50);
    }
    if (!ready || !pid) {
      killHard();
      await Promise.race([gone, sleep(2000)]);
      process.removeListener("exit", killHard);
      lastError = exited ? `centrifugo exited at start: ${output.slice(-3).join(" | ")}` : "centrifugo did not listen within 20 s";
      continue;
    }
    return {
      port,
      pid,
      async memory() {
        // Three forced GCs through pprof's heap endpoint (runtime.GC before the profile), then the Go heap in use and
        // the RSS; the Go runtime gives freed pages back to the OS in the background, not at a GC.
        let text = "";
        for (let i = 0; i < 3; i++) {
          text = await fetchText(port, "/debug/pprof/heap?gc=1&debug=1");
          await sleep(100);
        }
        const heap = /^# HeapAlloc = (\d+)/m.exec(text);
        return { rss: procRssBytes(pid), heapUsed: heap ? Number(heap[1]) : NaN };
      },
      async close() {
        if (!exited) {
          try {
            process.kill(pid, "SIGTERM");
          } catch {
            // already gone
          }
          await Promise.race([gone, sleep(3000)]);
          killHard();
          await Promise.race([gone, sleep(2000)]);
        }
        process.removeListener("exit", killHard);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(lastError);
}

/** An HS256 connection JWT: `sub` (the user id), `iat`, `exp` in two hours, signed with node:crypto. */
export function mintCentrifugoToken(secret: string, sub: string, nowSec = Math.floor(Date.now() / 1000)): string {
  const part = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString("base64url");
  const signingInput = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub, iat: nowSec, exp: nowSec + 7200 })}`;
  return `${signingInput}.${createHmac("sha256", secret).update(signingInput).digest("base64url")}`;
}

/** What a client does with the lines of one frame. */
export interface FrameSink {
  /** A publication's payload stamp (send time, shared clock). */
  onTs(ts: number): void;
  /** A reply or other push without a stamp (the whole line); only asked for while `wantsReplies()`. */
  onReply(line: string): void;
  wantsReplies(): boolean;
  /** `"client":"<id>"` of this connection, set once it has published: its own publications come back and are skipped. */
  ownMark: Buffer | undefined;
}

/**
 * Walks one frame's lines (Centrifugo puts one JSON reply or push per line). Returns true when the frame held a ping
 * (`{}`), which the client answers with `{}` once.
 */
export function readCentrifugoFrame(data: Buffer, sink: FrameSink): boolean {
  const len = data.length;
  let pinged = false;
  let at = 0;
  while (at < len) {
    let end = data.indexOf(10, at);
    if (end < 0) end = len;
    if (end - at === 2 && data[at] === 0x7b && data[at + 1] === 0x7d) pinged = true;
    else if (end > at) {
      const ts = extractTs(data, at, end);
      if (ts >= 0) {
        const own = sink.ownMark;
        if (own === undefined) sink.onTs(ts);
        else {
          // The publisher's own copy carries its client id in `info`, after the data.
          const i = data.indexOf(own, data.indexOf(TS_MARK, at));
          if (i < 0 || i >= end) sink.onTs(ts);
        }
      } else if (sink.wantsReplies()) sink.onReply(data.toString("utf8", at, end));
    }
    at = end + 1;
  }
  return pinged;
}

let unexpectedCloses = 0;

async function createClientFactory(opts: ClientOptions): Promise<ClientFactory> {
  const url = `ws://127.0.0.1:${opts.port}${WS_PATH}`;
  const tokens = new Map<number, string>();
  return {
    async prepare(from, count) {
      for (let i = from; i < from + count; i++) if (!tokens.has(i)) tokens.set(i, mintCentrifugoToken(opts.secret, `user-${i}`));
    },
    connect(index, hooks) {
      const token = tokens.get(index) ?? mintCentrifugoToken(opts.secret, `user-${index}`);
      tokens.delete(index);
      return new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { perMessageDeflate: false });
        const waiting = new Map<number, { resolve: (reply: Record<string, unknown>) => void; reject: (e: Error) => void }>();
        let nextId = 1;
        let clientId = "";
        let closing = false;
        const sink: FrameSink = {
          onTs: (ts) => hooks.onTs(ts),
          wantsReplies: () => waiting.size > 0,
          onReply(line) {
            let reply: { id?: number; error?: { code: number; message: string } } & Record<string, unknown>;
            try {
              reply = JSON.parse(line) as typeof reply;
            } catch {
              return;
            }
            const w = reply.id === undefined ? undefined : waiting.get(reply.id);
            if (!w) return;
            waiting.delete(reply.id!);
            if (reply.error) w.reject(new Error(`centrifugo error ${reply.error.code}: ${reply.error.message}`));
            else w.resolve(reply);
          },
          ownMark: undefined,
        };
        const command = (body: string): Promise<Record<string, unknown>> =>
          new Promise((res, rej) => {
            const id = nextId++;
            waiting.set(id, { resolve: res, reject: rej });
            ws.send(`{"id":${id},${body}}`);
          });
        ws.on("message", (data: Buffer) => {
          if (readCentrifugoFrame(data, sink)) ws.send("{}");
        });
        ws.once("error", reject);
        ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
        ws.on("close", (code, reason) => {
          for (const w of waiting.values()) w.reject(new Error(`closed (${code} ${reason.toString()})`));
          waiting.clear();
          if (!closing && ++unexpectedCloses <= 3) process.stderr.write(`centrifugo client ${clientId || index}: closed by the server (${code} ${reason.toString()})\n`);
        });
        ws.once("open", () => {
          command(`"connect":{"token":${JSON.stringify(token)}}`).then((reply) => {
            clientId = String((reply.connect as { client?: string } | undefined)?.client ?? "");
            ws.off("error", reject);
            ws.on("error", () => undefined);
            const ownMark = Buffer.from(`"client":${JSON.stringify(clientId)}`, "utf8");
            resolve({
              subscribe: async (room) => {
                await command(`"subscribe":{"channel":${JSON.stringify(room)}}`);
              },
              publish: (room, payload) => {
                sink.ownMark = ownMark;
                ws.send(`{"id":${nextId++},"publish":{"channel":${JSON.stringify(room)},"data":${payload}}}`);
              },
              close: () => {
                closing = true;
                ws.terminate();
              },
            });
          }, reject);
        });
      });
    },
  };
}

export const centrifugo: SystemAdapter = {
  id: "centrifugo",
  label: `Centrifugo v${CENTRIFUGO_VERSION}`,
  clientNote: "ws clients speaking Centrifugo's JSON protocol (client protocol v2); one frame may hold several newline-separated pushes",
  startServer,
  createClientFactory,
  prepare: prepareCentrifugo,
};
