import type { Clock } from "../clock.js";

interface Timer {
  id: number;
  due: number;
  every: number;
  callback: () => void;
}

/**
 * A clock that moves only when told to. `advance(ms)` fires due interval callbacks in time order, setting `now()` to
 * each one's due time while it runs, so leases and sweeps behave as they would in real time, without waiting.
 */
export class ManualClock implements Clock {
  #now: number;
  #nextId = 1;
  readonly #timers = new Map<number, Timer>();

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Schedules `callback` every `ms` (at least 1) of manual time, first at now + `ms`; returns the handle. */
  setInterval(callback: () => void, ms: number): unknown {
    const every = Math.max(1, ms);
    const id = this.#nextId++;
    this.#timers.set(id, { id, due: this.#now + every, every, callback });
    return id;
  }

  /** Cancels an interval; an unknown handle is ignored. */
  clearInterval(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Number of live intervals (a closed backend should leave none behind). */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing due callbacks in order, and lets promise callbacks settle. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + Math.max(0, ms);
    for (let fired = 0; fired < 1_000_000; fired++) {
      let next: Timer | undefined;
      for (const timer of this.#timers.values()) if (timer.due <= target && (next === undefined || timer.due < next.due)) next = timer;
      if (next === undefined) break;
      this.#now = next.due;
      next.due += next.every;
      next.callback();
      await Promise.resolve();
    }
    this.#now = target;
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
  }
}
