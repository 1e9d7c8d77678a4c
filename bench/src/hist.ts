/**
 * A latency histogram with ~2% resolution: bucket i holds values v (microseconds) with floor(log2(v + 1) * 32) = i.
 * Fixed size, so recording allocates nothing and histograms from several processes merge by adding counts.
 */
const SCALE = 32;
export const HIST_BUCKETS = 1100; // log2(1e10 µs) * 32 ≈ 1063: up to ~3 hours

export class Histogram {
  readonly counts = new Float64Array(HIST_BUCKETS);
  count = 0;
  max = 0;
  sum = 0;

  /** Records a latency in milliseconds. */
  record(ms: number): void {
    const us = ms > 0 ? ms * 1000 : 0;
    let i = Math.floor(Math.log2(us + 1) * SCALE);
    if (i >= HIST_BUCKETS) i = HIST_BUCKETS - 1;
    this.counts[i]!++;
    this.count++;
    this.sum += us;
    if (us > this.max) this.max = us;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.max = 0;
    this.sum = 0;
  }

  toJSON(): HistogramData {
    return { counts: Array.from(this.counts), count: this.count, max: this.max, sum: this.sum };
  }
}

export interface HistogramData {
  counts: number[];
  count: number;
  max: number;
  sum: number;
}

export function mergeHistograms(parts: HistogramData[]): HistogramData {
  const counts = new Array<number>(HIST_BUCKETS).fill(0);
  let count = 0;
  let max = 0;
  let sum = 0;
  for (const p of parts) {
    for (let i = 0; i < HIST_BUCKETS; i++) counts[i]! += p.counts[i] ?? 0;
    count += p.count;
    sum += p.sum;
    if (p.max > max) max = p.max;
  }
  return { counts, count, max, sum };
}

/** The q-quantile (0..1) in milliseconds: the midpoint of the bucket holding it, capped at the exact maximum. */
export function quantileMs(h: HistogramData, q: number): number {
  if (h.count === 0) return NaN;
  const target = Math.max(1, Math.ceil(h.count * q));
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i]!;
    if (seen >= target) {
      const lo = 2 ** (i / SCALE) - 1;
      const hi = 2 ** ((i + 1) / SCALE) - 1;
      return Math.min((lo + hi) / 2, h.max) / 1000;
    }
  }
  return h.max / 1000;
}

export interface LatencySummary {
  samples: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(h: HistogramData): LatencySummary {
  return {
    samples: h.count,
    p50: quantileMs(h, 0.5),
    p99: quantileMs(h, 0.99),
    max: h.count ? h.max / 1000 : NaN,
    mean: h.count ? h.sum / h.count / 1000 : NaN,
  };
}
