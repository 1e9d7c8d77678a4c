/**
 * One gateway process of the scale benchmark: @arqon/server on NATS backends (@arqon/nats), forked by run.ts.
 * IPC in: {type:"publish", t} (publish {t} to bench/all), {type:"rss"}, {type:"stop"}. IPC out: {type:"ready", port},
 * {type:"published"}, {type:"rss", rss, connections}.
 */
import { createArqonServer } from "@arqon/server";
import { connectNatsBackends } from "@arqon/nats";

const backends = await connectNatsBackends({ servers: process.env.ARQON_NATS_URL!, name: `scale-gw-${process.pid}` });
const server = createArqonServer({
  auth: { secret: process.env.ARQON_SECRET! },
  processMetrics: false,
  bus: backends.bus,
  controlPlane: backends.controlPlane,
  history: backends.history,
  presence: backends.presence,
  state: backends.state,
  kv: backends.kv,
});
const address = await server.listen(Number(process.env.ARQON_PORT ?? 0), "127.0.0.1");
const gc = (globalThis as { gc?: () => void }).gc;

process.on("message", (msg: { type: string; t?: number }) => {
  if (msg.type === "publish") {
    void server.publish("bench", "all", { t: msg.t }).then(() => process.send!({ type: "published" }));
  } else if (msg.type === "rss") {
    gc?.();
    process.send!({ type: "rss", rss: process.memoryUsage().rss, connections: server.connectionCount });
  } else if (msg.type === "stop") {
    void server
      .close()
      .then(() => backends.close())
      .then(() => process.exit(0));
  }
});
process.send!({ type: "ready", port: address.port });
