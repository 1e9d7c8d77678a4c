/**
 * One gateway process of the scale benchmark: @arqon/server on NATS backends (@arqon/nats), forked by run.ts.
 * IPC in: {type:"publish", t, at} (publish {t, at} to bench/all), {type:"rss"}, {type:"heapsnap", file}, {type:"stop"}.
 * IPC out: {type:"ready", port}, {type:"published"}, {type:"rss", rss, heapUsed, heapTotal, external, connections},
 * {type:"heapsnap", file}.
 */
import { createArqonServer } from "@arqon/server";
import { connectNatsBackends } from "@arqon/nats";
import { writeHeapSnapshot } from "node:v8";
import { handleProfileMessage } from "./profiler.js";

const backends = await connectNatsBackends({ servers: process.env.ARQON_NATS_URL!, name: `scale-gw-${process.pid}` });
const server = createArqonServer({
  auth: { secret: process.env.ARQON_SECRET! },
  processMetrics: false,
  // All clients come from a few loopback addresses: the per-IP cap (default 1,000) would refuse them with 429.
  // run.ts --presence keeps presence in the broadcast room (every subscribe then writes a KV entry every node mirrors).
  presenceOptions: process.env.ARQON_SCALE_PRESENCE === "1" ? {} : { disabledRooms: ["all"] },
  limits: {
    maxConnectionsPerIp: 1_000_000,
    maxConnectionsPerTenant: 1_000_000,
    maxConnections: 1_000_000,
    // run.ts --ping-interval-s; the default (25 s) otherwise.
    ...(process.env.ARQON_SCALE_PING_MS ? { pingIntervalMs: Number(process.env.ARQON_SCALE_PING_MS) } : {}),
  },
  bus: backends.bus,
  controlPlane: backends.controlPlane,
  history: backends.history,
  presence: backends.presence,
  state: backends.state,
  kv: backends.kv,
});
const address = await server.listen(Number(process.env.ARQON_PORT ?? 0), "127.0.0.1");
const gc = (globalThis as { gc?: () => void }).gc;

process.on("message", (msg: { type: string; t?: number; at?: number; file?: string }) => {
  if (msg.type.startsWith("profile-")) void handleProfileMessage(msg);
  else if (msg.type === "heapsnap") {
    writeHeapSnapshot(msg.file);
    process.send!({ type: "heapsnap", file: msg.file });
  } else if (msg.type === "publish") {
    void server.publish("bench", "all", { t: msg.t, at: msg.at }).then(() => process.send!({ type: "published" }));
  } else if (msg.type === "rss") {
    gc?.();
    gc?.();
    const m = process.memoryUsage();
    process.send!({
      type: "rss",
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      connections: server.connectionCount,
    });
  } else if (msg.type === "stop") {
    void server
      .close()
      .then(() => backends.close())
      .then(() => process.exit(0));
  }
});
process.send!({ type: "ready", port: address.port });
