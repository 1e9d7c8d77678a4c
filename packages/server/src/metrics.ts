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

/** Buckets of `arqon_fanout_seconds`, in seconds. */
export const FANOUT_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** The `tenant` label of every tenant past the first `maxTenantLabels`. */
export const OTHER_TENANT_LABEL = "_other";
/** How many tenants get a `tenant` label of their own when the server options set none. */
export const DEFAULT_MAX_TENANT_LABELS = 100;

/**
 * Keeps the `tenant` label bounded: the first `max` tenants seen by this process each get their own value, every later
 * one is counted under `_other`. A tenant never changes label while the process runs (a counter whose series moved
 * from `_other` to its own name would break `rate()` on both, and a gauge's increments and decrements must meet on the
 * same series), so the choice is first come, not a ranking: with more tenants than labels, set
 * `metrics.maxTenantLabels` above the count or accept that the late ones share `_other`. Only pinned tenants are
 * remembered, so a flood of new tenant names costs no memory here.
 */
export class TenantLabels {
  readonly #pinned = new Set<string>();

  constructor(
    /** Tenants that get a label of their own. */
    readonly max: number = DEFAULT_MAX_TENANT_LABELS,
  ) {
    if (!Number.isSafeInteger(max) || max < 0) throw new RangeError(`maxTenantLabels must be a whole number >= 0, not ${max}`);
  }

  /** The label value of `tenant`: itself, or `_other` once `max` others hold a label. */
  of(tenant: string): string {
    if (this.#pinned.has(tenant)) return tenant;
    if (this.#pinned.size >= this.max || tenant === OTHER_TENANT_LABEL) return OTHER_TENANT_LABEL;
    this.#pinned.add(tenant);
    return tenant;
  }

  /** How many tenants hold a label of their own. */
  get size(): number {
    return this.#pinned.size;
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

  constructor(
    config: { name: string; help: string; registers: Registry[] },
    private readonly tenants: TenantLabels = new TenantLabels(),
  ) {
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

  /**
   * The cell of one tenant (the same object every time: keep it where it is used per frame); past the label bound,
   * the shared `_other` cell.
   */
  labels(tenant: string): TenantCell {
    let cell = this.#cells.get(tenant);
    if (cell === undefined) {
      const label = this.tenants.of(tenant);
      cell = this.#cells.get(label);
      if (cell === undefined) {
        cell = new TenantCell();
        this.#cells.set(label, cell);
      }
    }
    return cell;
  }
}

/** One tenant's series of a {@link TenantHistogram}: an observation is a bucket search and three additions. */
export class HistogramCell {
  /** Observations per bucket (not cumulative); the last slot is above the highest bound. */
  readonly counts: Float64Array;
  /** Sum of the observed values. */
  sum = 0;
  /** Number of observations. */
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Records one value (seconds, for the fan-out histogram). */
  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]! += 1;
    this.sum += value;
    this.count += 1;
  }
}

/** One line of a {@link TenantHistogram}'s exposition. */
export interface HistogramValue {
  /** `tenant`, and `le` for a bucket. */
  labels: Record<string, string | number>;
  /** The bucket's cumulative count, the sum or the count. */
  value: number;
  /** `<name>_bucket`, `<name>_sum` or `<name>_count`. */
  metricName: string;
}

/**
 * A histogram labelled by tenant for the per-frame paths, registered in a prom-client registry as its own metric.
 * prom-client's `observe` converts, validates and hashes the labels on every call (2.2-3.4% of the server's busy time
 * in the rooms benchmark, one observation per room frame); here a call is {@link HistogramCell.observe} on a cached
 * cell, and the exposition (the same `_bucket`/`_sum`/`_count` series and `le` labels) is built at scrape time.
 */
export class TenantHistogram {
  readonly #cells = new Map<string, HistogramCell>();
  /** prom-client's metric fields, read by the registry. */
  readonly type = "histogram";
  readonly aggregator = "sum";

  constructor(
    readonly name: string,
    readonly help: string,
    readonly bounds: readonly number[],
    registers: Registry[],
    private readonly tenants: TenantLabels = new TenantLabels(),
  ) {
    for (const registry of registers) registry.registerMetric(this as unknown as Histogram);
  }

  /**
   * The cell of one tenant (the same object every time: keep it where it is used per frame); past the label bound,
   * the shared `_other` cell.
   */
  labels(tenant: string): HistogramCell {
    const label = this.tenants.of(tenant);
    let cell = this.#cells.get(label);
    if (cell === undefined) {
      cell = new HistogramCell(this.bounds);
      this.#cells.set(label, cell);
    }
    return cell;
  }

  /** The metric's series as prom-client's registry reads them (`Registry.metrics()`, `getMetricsAsJSON()`). */
  get(): { name: string; help: string; type: string; aggregator: string; values: HistogramValue[] } {
    const values: HistogramValue[] = [];
    for (const [label, cell] of this.#cells) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += cell.counts[i]!;
        values.push({ labels: { le: this.bounds[i]!, tenant: label }, value: cumulative, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { le: "+Inf", tenant: label }, value: cell.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { tenant: label }, value: cell.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { tenant: label }, value: cell.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Forgets every observation (`Registry.resetMetrics()`). */
  reset(): void {
    for (const cell of this.#cells.values()) {
      cell.counts.fill(0);
      cell.sum = 0;
      cell.count = 0;
    }
  }
}

/**
 * Counters and gauges another package adds to a server's registry (the operators' `OperatorMeter` has this shape). A
 * counter asked for twice by name is the same counter; a gauge asked for again replaces its `collect`.
 */
export interface ServerMeter {
  /** A counter with the given labels. */
  counter(
    name: string,
    help: string,
    labelNames: string[],
  ): {
    /** Adds `by` (default 1) to the series of `labels`. */
    inc(labels: Record<string, string>, by?: number): void;
  };
  /** A gauge whose series `collect` lists at each scrape. */
  gauge(name: string, help: string, labelNames: string[], collect: () => Array<[labels: Record<string, string>, value: number]>): void;
  /** The `tenant` label value of a tenant (bounded, see {@link TenantLabels}). */
  tenant(tenant: string): string;
}

/** What `ServerMetrics` reads at scrape time, besides its own counters. */
export interface ServerMetricsOptions {
  /** Collect Node process metrics (`arqon_process_*`, `arqon_nodejs_*`). @default true */
  processMetrics?: boolean;
  /** Rooms with a local subscriber (`arqon_rooms`). */
  rooms?: () => number;
  /** Tenants with a `tenant` label of their own (see {@link TenantLabels}). @default DEFAULT_MAX_TENANT_LABELS */
  maxTenantLabels?: number;
  /** The external backend's link (`arqon_backend_connected{backend}`); absent on the embedded backends. */
  backendStatus?: () => { name: string; state: string } | undefined;
  /** What the history store holds (`arqon_history_rooms`, `arqon_history_messages`); absent when it cannot say. */
  historyStats?: () => Promise<{ rooms: number; messages: number }>;
}

/**
 * The Prometheus metrics of one server instance, in a registry of its own (two servers in one process never share
 * counters). Everything room-related is labelled by tenant, bounded by {@link TenantLabels}: call `tenant()` for the
 * label value of a tenant.
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
  readonly fanoutSeconds: TenantHistogram;
  readonly upgradesRejected: Counter<"code">;
  readonly closes: Counter<"code">;
  /** The bound on `tenant` label values. */
  readonly tenantLabels: TenantLabels;
  /** Proxy hook calls by hook and result (allow, deny, failure). */
  readonly proxyCalls: Counter<"hook" | "result">;
  /** Proxy hook failures by hook and reason (timeout, connect, http_status, redirect, bad_answer, overloaded, forbidden). */
  readonly proxyFailures: Counter<"hook" | "reason">;
  /** Time of proxy hook calls, by hook. */
  readonly proxySeconds: Histogram<"hook">;

  constructor(options: ServerMetricsOptions = {}) {
    const registers = [this.registry];
    const labels = (this.tenantLabels = new TenantLabels(options.maxTenantLabels));
    this.connections = new Gauge({ name: "arqon_connections", help: "Open WebSocket connections", labelNames: ["tenant"], registers });
    this.connectionsTotal = new Counter({
      name: "arqon_connections_total",
      help: "WebSocket connections accepted",
      labelNames: ["tenant"],
      registers,
    });
    this.messagesIn = new TenantCounter({ name: "arqon_messages_in_total", help: "Frames received from clients", registers }, labels);
    this.messagesOut = new TenantCounter({ name: "arqon_messages_out_total", help: "Frames queued to clients", registers }, labels);
    this.bytesIn = new TenantCounter({ name: "arqon_bytes_in_total", help: "Bytes received from clients", registers }, labels);
    this.bytesOut = new TenantCounter({ name: "arqon_bytes_out_total", help: "Bytes queued to clients", registers }, labels);
    this.errors = new Counter({
      name: "arqon_errors_total",
      help: "Error frames sent, by code",
      labelNames: ["tenant", "code"],
      registers,
    });
    this.fanoutSeconds = new TenantHistogram(
      "arqon_fanout_seconds",
      "Time to encode one room frame and queue it to every local subscriber",
      // From 10 µs (a room of a few sockets) to 2.5 s (a stalled turn of a room of 100k), about x2.5 apart.
      FANOUT_BUCKETS,
      registers,
      labels,
    );
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
    const backendStatus = options.backendStatus;
    if (backendStatus) {
      new Gauge({
        name: "arqon_backend_connected",
        help: "1 while the link to the external backend (NATS) is connected, 0 while it reconnects or is closed",
        labelNames: ["backend"],
        registers,
        collect() {
          const status = backendStatus();
          if (status) this.set({ backend: status.name }, status.state === "connected" ? 1 : 0);
        },
      });
    }
    const historyStats = options.historyStats;
    if (historyStats) {
      // One read of the store per scrape, shared by both gauges (a scrape collects every metric at once); a store
      // that fails to answer leaves both gauges at their last value.
      let pending: Promise<{ rooms: number; messages: number } | undefined> | undefined;
      const read = (): Promise<{ rooms: number; messages: number } | undefined> =>
        (pending ??= historyStats()
          .catch(() => undefined)
          .finally(() => (pending = undefined)));
      new Gauge({
        name: "arqon_history_rooms",
        help: "Rooms the history store keeps messages of (all tenants, the whole store: every node reports the shared store's figure on NATS)",
        registers,
        async collect() {
          const stats = await read();
          if (stats) this.set(stats.rooms);
        },
      });
      new Gauge({
        name: "arqon_history_messages",
        help: "Messages the history store keeps (all tenants)",
        registers,
        async collect() {
          const stats = await read();
          if (stats) this.set(stats.messages);
        },
      });
    }
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: "arqon_" });
  }

  /** The `tenant` label value of `tenant` (itself, or `_other` past the bound). */
  tenant(tenant: string): string {
    return this.tenantLabels.of(tenant);
  }

  /** Metrics that code outside the server (operators) adds to this registry; see {@link ServerMeter}. */
  readonly meter: ServerMeter = {
    counter: (name, help, labelNames) => {
      const existing = this.registry.getSingleMetric(name);
      const counter = existing instanceof Counter ? (existing as Counter<string>) : new Counter({ name, help, labelNames, registers: [this.registry] });
      return { inc: (labels, by = 1) => counter.inc(labels, by) };
    },
    gauge: (name, help, labelNames, collect) => {
      const existing = this.registry.getSingleMetric(name);
      if (existing) this.registry.removeSingleMetric(name);
      new Gauge({
        name,
        help,
        labelNames,
        registers: [this.registry],
        collect() {
          this.reset();
          for (const [labels, value] of collect()) this.set(labels, value);
        },
      });
    },
    tenant: (tenant) => this.tenantLabels.of(tenant),
  };
}
