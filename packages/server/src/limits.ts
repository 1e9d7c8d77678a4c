/**
 * A token bucket: `capacity` tokens, refilled continuously at `ratePerSecond`. `take()` spends one token when there is
 * one. A rate of 0 means unlimited. Refill is computed lazily on use, so an idle bucket costs nothing.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private ratePerSecond: number,
    private capacity: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = capacity;
    this.last = now();
  }

  /** Spends `cost` tokens when the bucket holds that many; false (nothing spent) when not. Always true at rate 0. */
  take(cost = 1): boolean {
    if (this.ratePerSecond <= 0) return true;
    const t = this.now();
    const elapsed = t - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.ratePerSecond) / 1000);
      this.last = t;
    }
    if (this.tokens >= cost) {
      this.tokens -= cost;
      return true;
    }
    return false;
  }

  /** Changes the rate and capacity in place; the tokens already held are kept, up to the new capacity. */
  reconfigure(ratePerSecond: number, capacity: number): void {
    this.ratePerSecond = ratePerSecond;
    this.capacity = capacity;
    this.tokens = Math.min(this.tokens, capacity);
  }
}

/** Counts live connections per key (IP address, tenant), removing keys that drop to zero. */
export class ConnectionCounter {
  private readonly counts = new Map<string, number>();

  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  increment(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  decrement(key: string): void {
    const n = (this.counts.get(key) ?? 0) - 1;
    if (n <= 0) this.counts.delete(key);
    else this.counts.set(key, n);
  }

  get size(): number {
    return this.counts.size;
  }
}

/**
 * Counts rejections within a sliding window so that a client which keeps hammering after ARQ_RATE_LIMITED can be
 * told apart from one that briefly overshot.
 */
export class AbuseCounter {
  private count = 0;
  private windowStart = 0;

  constructor(
    private readonly threshold: number,
    private readonly windowMs: number,
  ) {}

  /** Records one rejection; true when the threshold is reached within the window. */
  hit(now: number): boolean {
    if (now - this.windowStart > this.windowMs) {
      this.windowStart = now;
      this.count = 0;
    }
    this.count++;
    return this.count >= this.threshold;
  }
}
