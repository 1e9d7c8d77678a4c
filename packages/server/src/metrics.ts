import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * The Prometheus metrics of one server instance, in a registry of its own (two servers in one process never share
 * counters). Everything room-related is labelled by tenant.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly connections: Gauge<"tenant">;
  readonly connectionsTotal: Counter<"tenant">;
  readonly messagesIn: Counter<"tenant">;
  readonly messagesOut: Counter<"tenant">;
  readonly bytesIn: Counter<"tenant">;
  readonly bytesOut: Counter<"tenant">;
  readonly errors: Counter<"tenant" | "code">;
  readonly fanoutSeconds: Histogram<"tenant">;
  readonly upgradesRejected: Counter<"code">;
  readonly closes: Counter<"code">;

  constructor(options: { processMetrics?: boolean; rooms?: () => number } = {}) {
    const registers = [this.registry];
    this.connections = new Gauge({ name: "arqon_connections", help: "Open WebSocket connections", labelNames: ["tenant"], registers });
    this.connectionsTotal = new Counter({
      name: "arqon_connections_total",
      help: "WebSocket connections accepted",
      labelNames: ["tenant"],
      registers,
    });
    this.messagesIn = new Counter({ name: "arqon_messages_in_total", help: "Frames received from clients", labelNames: ["tenant"], registers });
    this.messagesOut = new Counter({ name: "arqon_messages_out_total", help: "Frames queued to clients", labelNames: ["tenant"], registers });
    this.bytesIn = new Counter({ name: "arqon_bytes_in_total", help: "Bytes received from clients", labelNames: ["tenant"], registers });
    this.bytesOut = new Counter({ name: "arqon_bytes_out_total", help: "Bytes queued to clients", labelNames: ["tenant"], registers });
    this.errors = new Counter({
      name: "arqon_errors_total",
      help: "Error frames sent, by code",
      labelNames: ["tenant", "code"],
      registers,
    });
    this.fanoutSeconds = new Histogram({
      name: "arqon_fanout_seconds",
      help: "Time to encode one room frame and queue it to every local subscriber",
      labelNames: ["tenant"],
      buckets: [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1],
      registers,
    });
    this.upgradesRejected = new Counter({
      name: "arqon_upgrades_rejected_total",
      help: "WebSocket upgrades refused before the handshake, by code",
      labelNames: ["code"],
      registers,
    });
    this.closes = new Counter({ name: "arqon_closes_total", help: "Connections closed, by close code", labelNames: ["code"], registers });
    const rooms = options.rooms;
    if (rooms) {
      new Gauge({
        name: "arqon_rooms",
        help: "Rooms with at least one local subscriber",
        registers,
        collect() {
          this.set(rooms());
        },
      });
    }
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: "arqon_" });
  }
}
