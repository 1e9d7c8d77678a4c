import { afterEach } from "vitest";
import { ManualClock } from "./clock.js";
import { sleep } from "./wait.js";

/** What a contract suite hands a backend factory. */
export interface ContractEnv {
  /**
   * The suite's clock. With `time: "manual"` the backend must read time (and schedule timers) from it, and the suite
   * advances it instead of waiting; with `time: "real"` the backend ignores it and the suite waits real (short) windows.
   */
  clock: ManualClock;
}

/**
 * A backend under test: two handles on one shared backend, as two gateway nodes would hold them (for a cluster
 * backend, two separate connections). A single-process backend may return the same instance twice.
 */
export interface ContractFixture<T> {
  /** The two handles the suite drives, as node 0 and node 1 (they may be one instance, see above). */
  nodes: readonly [T, T];
  /** Closes both nodes and frees whatever the factory created. Called after every test. */
  cleanup(): Promise<void>;
}

/** How a contract suite runs against a backend: its notion of time and how long it waits. */
export interface ContractOptions {
  /**
   * "manual": the backend reads `env.clock`, so age and lease tests advance it (fast, deterministic).
   * "real": the backend uses wall time; age and lease tests use windows under one second (see each suite).
   * @default "real"
   */
  time?: "manual" | "real";
  /** Bound of every wait for something that must happen, in milliseconds. @default 2000 */
  timeoutMs?: number;
  /** How long a negative check waits for something that must not happen, in milliseconds. @default 100 */
  quietMs?: number;
}

/** @internal Shared plumbing of the suites: fixture lifetime, time, bounded waits. */
export class SuiteContext<F extends ContractFixture<unknown>, E extends ContractEnv> {
  readonly time: "manual" | "real";
  readonly timeoutMs: number;
  readonly quietMs: number;
  #open: F[] = [];
  clock = new ManualClock();

  constructor(
    private readonly factory: (env: E) => Promise<F>,
    options: ContractOptions,
  ) {
    this.time = options.time ?? "real";
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.quietMs = options.quietMs ?? 100;
    afterEach(async () => {
      const open = this.#open;
      this.#open = [];
      for (const fixture of open) await fixture.cleanup();
    });
  }

  /** Creates a fixture for one test; it is cleaned up after the test whatever the outcome. */
  async open(env: Omit<E, "clock">): Promise<F> {
    this.clock = new ManualClock();
    const fixture = await this.factory({ ...env, clock: this.clock } as E);
    this.#open.push(fixture);
    return fixture;
  }

  /** Lets `ms` of backend time pass: advances the manual clock, or sleeps. */
  elapse(ms: number): Promise<void> {
    return this.time === "manual" ? this.clock.advance(ms) : sleep(ms);
  }

  /** The short wait of a negative check. */
  quiet(): Promise<void> {
    return sleep(this.quietMs);
  }

  get wait(): { timeoutMs: number } {
    return { timeoutMs: this.timeoutMs };
  }
}
