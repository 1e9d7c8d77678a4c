import WebSocket from "ws";
import { readLean } from "../lean.js";
import { extractTs } from "../payload.js";
import { makeSseFactory } from "./arqon-sse.js";
import { settleReply, type ReplyWaiter } from "./replies.js";
import type { ClientFactory, ClientHooks, ClientOptions, RunningServer, ServerStartOptions, SystemAdapter } from "./types.js";

/**
 * ArqonBus through its public factory, `createArqonServer` from @arqon/server (imported from source by tsx with the
 * `arqon-source` condition), on the embedded in-memory backends. Tokens are HS256 JWTs minted with jose and verified
 * by the gateway at the upgrade. Limits that would throttle a benchmark (per-IP connections, publish rate) are raised;
 * everything else is the shipped default, metrics included.
 */

export const BENCH_TENANT = "bench";

/** The limits that would throttle a benchmark, raised (per-IP connections, publish rate, queues); the rest default. */
export const BENCH_LIMITS = {
  maxConnectionsPerIp: 1_000_000,
  maxConnectionsPerTenant: 1_000_000,
  maxConnections: 1_000_000,
  publishRatePerSecond: 10_000_000,
  publishBurst: 10_000_000,
  abuseThreshold: 1_000_000,
  maxInboundQueue: 1_000_000,
  maxPendingBytes: Number(process.env.ARQON_BENCH_MAX_PENDING_BYTES) || 64 * 1024 * 1024,
  // ARQON_BENCH_SLOW_CLOSE_MS: another slow-consumer grace, for an A/B (the figures use the library default).
  ...(Number(process.env.ARQON_BENCH_SLOW_CLOSE_MS) > 0 ? { slowConsumerCloseMs: Number(process.env.ARQON_BENCH_SLOW_CLOSE_MS) } : {}),
};

/** `hmacVerifier`: which code checks the HS256 tokens (`jose` only for the `arqon-json-jose` comparison). */
async function startServer(opts: ServerStartOptions, hmacVerifier: "builtin" | "jose" = "builtin", traced: false | number = false): Promise<RunningServer> {
  const { createArqonServer } = await import("@arqon/server");
  const { pino } = await import("pino");
  // ARQON_BENCH_HISTORY_MESSAGES: another history retention per room, for an experiment (the figures use the default, 1,000).
  const keep = process.env.ARQON_BENCH_HISTORY_MESSAGES;
  const history = keep === undefined ? undefined : new (await import("@arqon/core")).MemoryHistoryStore({ retention: { maxMessages: Number(keep) } });
  const tracing = traced === false ? undefined : await benchTracing(traced);
  const server = createArqonServer({
    ...(history ? { history } : {}),
    ...(tracing ? { tracing: { tracerProvider: tracing.provider } } : {}),
    auth: { secret: opts.secret, algorithms: ["HS256"], hmacVerifier },
    logger: pino({ level: process.env.ARQON_LOG_LEVEL ?? "warn" }),
    limits: BENCH_LIMITS,
  });
  const addr = await server.listen(0, "127.0.0.1");
  return {
    port: addr.port,
    close: async () => {
      await server.close();
      await tracing?.provider.shutdown();
    },
  };
}

/**
 * Tracing on, `ratio` of the traces sampled (1: every span), batched as `arqon serve --otel` batches them and
 * serialized to OTLP/JSON by the same serializer, then dropped instead of posted (no collector on the bench machine:
 * the HTTP write to one is not counted).
 */
async function benchTracing(ratio: number) {
  const { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } = await import("@opentelemetry/sdk-trace-base");
  const { JsonTraceSerializer } = await import("@opentelemetry/otlp-transformer");
  const { ExportResultCode } = await import("@opentelemetry/core");
  let exported = 0;
  const exporter = {
    export(spans: Parameters<typeof JsonTraceSerializer.serializeRequest>[0], done: (r: { code: number }) => void) {
      exported += JsonTraceSerializer.serializeRequest(spans)?.length ?? 0;
      done({ code: ExportResultCode.SUCCESS });
    },
    shutdown: async () => undefined,
  };
  const provider = new BasicTracerProvider({
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000, maxQueueSize: 65_536, maxExportBatchSize: 4096 })],
  });
  return { provider, exportedBytes: () => exported };
}

/** `protocol`: the wire protocol version the subscribers ask for (`&protocol=1.1`); "1.0" asks for none. */
export function makeFactory(codec: "json" | "protobuf", protocol: "1.0" | "1.1" = "1.0") {
  return async function createClientFactory(opts: ClientOptions): Promise<ClientFactory> {
    const { SignJWT } = await import("jose");
    const core = await import("@arqon/core");
    const key = new TextEncoder().encode(opts.secret);
    // Without ARQON_BENCH_PRESENCE=1 tokens grant no presence capability: a broadcast audience of 10,000 does not
    // watch itself join (the subscriber still enters the room's presence set on the server).
    const claims: Record<string, unknown> = { tenant: BENCH_TENANT };
    if (process.env.ARQON_BENCH_PRESENCE !== "1") claims.caps = { sub: ["**"], pub: ["**"] };
    const tokens = new Map<number, string>();
    const mint = (i: number): Promise<string> =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(`user-${i}`)
        .setIssuedAt()
        .setExpirationTime("2h")
        .sign(key);
    const base = `ws://127.0.0.1:${opts.port}/ws?codec=${codec}${protocol === "1.1" ? "&protocol=1.1" : ""}&token=`;
    return {
      async prepare(from, count) {
        for (let i = from; i < from + count; i++) if (!tokens.has(i)) tokens.set(i, await mint(i));
      },
      async connect(index, hooks) {
        const token = tokens.get(index) ?? (await mint(index));
        tokens.delete(index);
        return new Promise((resolve, reject) => {
          const ws = new WebSocket(base + token, { perMessageDeflate: false });
          const replies = new Map<string, ReplyWaiter>();
          let nextReq = 1;
          let welcomed = false;
          ws.on("message", (data: Buffer, isBinary: boolean) => {
            if (welcomed) {
              // One scan for the stamp, as the floor's and Socket.IO's clients do; replies have none.
              const ts = extractTs(data);
              if (ts >= 0) {
                hooks.onTs(ts);
                return;
              }
            }
            if (welcomed && replies.size === 0) return;
            const decoded = isBinary ? core.decodeProto(data, { from: "any" }) : core.decodeJson(data.toString("utf8"), { from: "any" });
            if (!decoded.ok) return;
            const f = decoded.frame;
            if (!welcomed) {
              if (f.type === "welcome") {
                welcomed = true;
                ws.off("error", reject);
                ws.on("error", () => undefined);
                resolve(conn);
              }
              return;
            }
            settleReply(replies, f);
          });
          ws.once("error", reject);
          ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
          const conn = {
            subscribe: (room: string) =>
              new Promise<void>((res, rej) => {
                const requestId = `s${nextReq++}`;
                replies.set(requestId, { resolve: res, reject: rej });
                ws.send(JSON.stringify({ type: "subscribe", room, requestId }));
              }),
            publish:
              codec === "json"
                ? (room: string, payload: string) => ws.send(`{"type":"publish","room":${JSON.stringify(room)},"payload":${payload}}`)
                : (room: string, payload: string) =>
                    ws.send(core.encodeProto({ type: "publish", room, payload: Buffer.from(payload, "utf8") }), { binary: true }),
            close: () => ws.terminate(),
            lean: (h: ClientHooks) => readLean(ws, h),
          };
        });
      },
    };
  };
}

/** ArqonBus with JSON clients on protocol 1.1, the version @arqon/sdk and the Python SDK ask for by default. */
export const arqonJson: SystemAdapter = {
  id: "arqon-json",
  label: "ArqonBus (JSON)",
  clientNote: "ws clients, JSON text frames (?codec=json&protocol=1.1): compact message objects",
  startServer: (opts) => startServer(opts),
  createClientFactory: makeFactory("json", "1.1"),
};

/** `arqon-json` with HS256 tokens verified by jose's `jwtVerify` instead of ours (JWT HMAC comparison, issue 21). */
export const arqonJsonJose: SystemAdapter = {
  id: "arqon-json-jose",
  label: "ArqonBus (JSON, jose HMAC)",
  clientNote: "ws clients, JSON text frames (?codec=json&protocol=1.1)",
  startServer: (opts) => startServer(opts, "jose"),
  createClientFactory: makeFactory("json", "1.1"),
};

/** `arqon-json` with OpenTelemetry tracing on (every span sampled, exported in batches; issue 25's "with it on"). */
export const arqonJsonOtel: SystemAdapter = {
  id: "arqon-json-otel",
  label: "ArqonBus (JSON, tracing on)",
  clientNote: "ws clients, JSON text frames (?codec=json&protocol=1.1); the server traces every publish and delivery",
  startServer: (opts) => startServer(opts, "builtin", 1),
  createClientFactory: makeFactory("json", "1.1"),
};

/** `arqon-json-otel` with 1% of the traces sampled (the others make non-recording spans): tracing as it is run in production. */
export const arqonJsonOtelSampled: SystemAdapter = {
  id: "arqon-json-otel-1pct",
  label: "ArqonBus (JSON, tracing on, 1% sampled)",
  clientNote: "ws clients, JSON text frames (?codec=json&protocol=1.1); the server traces 1% of the publishes",
  startServer: (opts) => startServer(opts, "builtin", 0.01),
  createClientFactory: makeFactory("json", "1.1"),
};

/** `arqon-json` with clients on protocol 1.0 (no `protocol` asked for): the full message frame of every field. */
export const arqonJson10: SystemAdapter = {
  id: "arqon-json-1.0",
  label: "ArqonBus (JSON, protocol 1.0)",
  clientNote: "ws clients, JSON text frames (?codec=json): protocol 1.0 message frames",
  startServer: (opts) => startServer(opts),
  createClientFactory: makeFactory("json", "1.0"),
};

/** `arqon-proto` with clients on protocol 1.0 (default headers and the epoch on every live message). */
export const arqonProto10: SystemAdapter = {
  id: "arqon-proto-1.0",
  label: "ArqonBus (protobuf, protocol 1.0)",
  clientNote: "ws clients, protobuf binary frames (?codec=protobuf); publishes sent as protobuf",
  startServer: (opts) => startServer(opts),
  createClientFactory: makeFactory("protobuf", "1.0"),
};

/** ArqonBus with protobuf clients on protocol 1.1 (no default headers, no epoch on live messages), the SDKs' default. */
export const arqonProto: SystemAdapter = {
  id: "arqon-proto",
  label: "ArqonBus (protobuf)",
  clientNote: "ws clients, protobuf binary frames (?codec=protobuf&protocol=1.1); publishes sent as protobuf",
  startServer: (opts) => startServer(opts),
  createClientFactory: makeFactory("protobuf", "1.1"),
};

/**
 * ArqonBus's fallback transport (SSE / HTTP streaming): each client one `GET /ws/sse` event stream with the bearer
 * header, its frames up by `POST /ws/send`, as `@arqon/sdk`'s "http-stream" transport speaks it. Same server.
 */
export const arqonSse: SystemAdapter = {
  id: "arqon-sse",
  label: "ArqonBus (SSE fallback)",
  clientNote: "HTTP clients: GET /ws/sse?protocol=1.1 event stream down, POST /ws/send ndjson up (one in flight per client)",
  startServer: (opts) => startServer(opts),
  createClientFactory: makeSseFactory(BENCH_TENANT),
};
