/** Run sizes. `short` stays under five minutes on 2 shared cores; `full` is what docs/benchmarks.md reports. */
export interface Profile {
  name: "short" | "full";
  runs: number;
  /** Fan-out audience sizes. */
  fanoutSizes: number[];
  /** Length of one step of a saturation search. */
  stepMs: number;
  /** Length of the latency measurements at half load and at the common rate. */
  latencyMs: number;
  /** Maximum steps of one saturation search. */
  maxSteps: number;
  /** Fixed common delivery rate (deliveries/s) at which every system's latency is also measured. */
  commonRate: number;
  /** Subscriber processes for fan-out. */
  subscriberProcs: number;
  /** Many-rooms: number of rooms of 2-4 members (0: skip). */
  rooms: number;
  /** Idle connections; opening them is also the connection-setup measurement. */
  idleConnections: number;
  /** A separate connection-setup workload (0: setup is measured by idle-memory). */
  setupConnections: number;
  /** Connections at most per client process (ulimit -n is 20,000 here). */
  maxPerProc: number;
  /**
   * Slow-consumer isolation (0 rounds: skip): each round measures the normal subscribers' latency over `withoutMs`
   * without the paused reader, then over `withMs` with a fresh one.
   */
  slowConsumer: { rounds: number; withoutMs: number; withMs: number };
}

export const PROFILES: Record<"short" | "full", Profile> = {
  short: {
    name: "short",
    runs: 1,
    fanoutSizes: [1000],
    stepMs: 800,
    latencyMs: 1200,
    maxSteps: 9,
    commonRate: 10_000,
    subscriberProcs: 2,
    rooms: 300,
    idleConnections: 1000,
    setupConnections: 0,
    maxPerProc: 9000,
    slowConsumer: { rounds: 2, withoutMs: 2500, withMs: 7000 },
  },
  full: {
    name: "full",
    runs: 3,
    fanoutSizes: [1000, 10_000],
    stepMs: 1000,
    latencyMs: 2000,
    maxSteps: 12,
    commonRate: 10_000,
    subscriberProcs: 2,
    rooms: 5000,
    idleConnections: 10_000,
    setupConnections: 0,
    maxPerProc: 9000,
    slowConsumer: { rounds: 3, withoutMs: 4000, withMs: 8000 },
  },
};
