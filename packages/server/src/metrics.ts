import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** One tenant's share of a {@link TenantCounter}: increments are plain additions until the next scrape. */
export class TenantCell {
  /** Added since the counter was last collected. */
  n = 0;

  /** Adds `by` (default 1). */
  inc(by = 1): void {
    this.n += by;
  }
}

/**
 * A counter labelled by tenant for the per-frame paths. prom-client's own `inc` hashes the labels and builds an array
 * of every series on each call (~600 bytes of garbage per published message in the rooms benchmark); here a call is
 * one addition on a cached cell, and the cells are moved into the prom-client counter when it is collected (a scrape).
 */
export class TenantCounter {
  readonly #cells = new Map<string, TenantCell>();
  /** The prom-client counter the cells are collected into. */
  readonly counter: Counter<"tenant">;

  constructor(config: { name: string; help: string; registers: Registry[] }) {
    const cells = this.#cells;
    this.counter = new Counter({
      ...config,
      labelNames: ["tenant"],
      collect() {
        for (const [tenant, cell] of cells) {
          if (cell.n === 0) continue;
          this.inc({ tenant }, cell.n);
          cell.n = 0;
        }
      },
    });
  }

  /** The cell of one tenant (the same object every time: keep it where it is used per frame). */
  labels(tenant: string): TenantCell {
    let cell = this.#cells.get(tenant);
    if (cell === undefined) {
      cell = new TenantCell();
      this.#cells.set(tenant, cell);
    }
    return cell;
  }
}

/**
 * The Prometheus metrics of one server instance, in a registry of its own (two servers in one process never share
 * counters). Everything room-related is labelled by tenant.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly connections: Gauge<"tenant">;
  readonly connectionsTotal: Counter<"tenant">;
  readonly messagesIn: TenantCounter;
  readonly messagesOut: TenantCounter;
  readonly bytesIn: TenantCounter;
  readonly bytesOut: TenantCounter;
  readonly errors: Counter<"tenant" | "code">;
  readonly fanoutSeconds: Histogram<"tenant">;
  readonly upgradesRejected: Counter<"code">;
  readonly closes: Counter<"code">;
  /** Proxy hook calls by hook and result (allow, deny, failure). */
  readonly proxyCalls: Counter<"hook" | "result">;
  /** Proxy hook failures by hook and reason (timeout, connect, http_status, redirect, bad_answer, overloaded, forbidden). */
  readonly proxyFailures: Counter<"hook" | "reason">;
  /** Time of proxy hook calls, by hook. */
  readonly proxySeconds: Histogram<"hook">;

  constructor(options: { processMetrics?: boolean; rooms?: () => number } = {}) {
    const registers = [this.registry];
    this.connections = new Gauge({ name: "arqon_connections", help: "Open WebSocket connections", labelNames: ["tenant"], registers });
    this.connectionsTotal = new Counter({
      name: "arqon_connections_total",
      help: "WebSocket connections accepted",
      labelNames: ["tenant"],
      registers,
    });
    this.messagesIn = new TenantCounter({ name: "arqon_messages_in_total", help: "Frames received from clients", registers });
    this.messagesOut = new TenantCounter({ name: "arqon_messages_out_total", help: "Frames queued to clients", registers });
    this.bytesIn = new TenantCounter({ name: "arqon_bytes_in_total", help: "Bytes received from clients", registers });
    this.bytesOut = new TenantCounter({ name: "arqon_bytes_out_total", help: "Bytes queued to clients", registers });
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
    this.proxyCalls = new Counter({ name: "arqon_proxy_calls_total", help: "Proxy hook calls, by hook and result", labelNames: ["hook", "result"], registers });
    this.proxyFailures = new Counter({ name: "arqon_proxy_failures_total", help: "Proxy hook failures, by hook and reason", labelNames: ["hook", "reason"], registers });
    this.proxySeconds = new Histogram({
      name: "arqon_proxy_duration_seconds",
      help: "Time of proxy hook calls, by hook",
      labelNames: ["hook"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
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
