import type { SystemAdapter } from "../systems/types.js";
import type { Profile } from "../profile.js";

/** One measured figure of one system in one run. */
export interface Metric {
  /** Stable key, e.g. "fanout.n1000.deliveries". */
  key: string;
  label: string;
  unit: string;
  value: number;
  /** Which way is better, for ratios and targets. */
  better: "higher" | "lower";
  /** Free-form facts behind the figure (steps of a search, CPU shares, failures). */
  detail?: unknown;
}

export interface WorkloadContext {
  system: SystemAdapter;
  profile: Profile;
  secret: string;
  run: number;
  /** Node flags for the server process (e.g. --cpu-prof when profiling this system). */
  serverNodeArgs: string[];
  log(msg: string): void;
  /**
   * Where a saturation search starts: 60% of what this workload measured for this system in an earlier run, so
   * later runs need fewer steps; `fallback` in the first run.
   */
  searchStart(fallback: number): number;
  /** Records a saturation figure for `searchStart` in later runs. */
  rememberSaturation(value: number): void;
}

/** A workload: one file under workloads/, listed in workloads/index.ts. */
export interface Workload {
  id: string;
  title: string;
  /** Whether it runs in this profile (short or full). */
  enabled(profile: Profile): boolean;
  /**
   * Systems this workload also runs when the run uses the default set (no --systems): fan-out adds the floor carrying
   * ArqonBus's frame, which its targets are judged against.
   */
  extraSystems?: string[];
  /** Measures one system once; each call starts and stops its own processes. */
  run(ctx: WorkloadContext): Promise<Metric[]>;
}
