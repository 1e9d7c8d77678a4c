import { ArqonError, ErrorCode } from "@arqon/core";

/** Rate limit of the server API per credential (`http.apiRateLimit`). */
export interface ApiRateLimitOptions {
  /** Requests per second one credential may make on average; 0 turns the limit off. @default 200 */
  perSecond?: number;
  /** Requests one credential may make at once above the rate. @default 2 × perSecond (400) */
  burst?: number;
  /** Credentials tracked at most; past it the least recently used bucket is dropped. @default 10000 */
  maxKeys?: number;
}

export const DEFAULT_API_RATE_PER_SECOND = 200;
export const DEFAULT_API_MAX_KEYS = 10_000;

interface Bucket {
  tokens: number;
  last: number;
}

/** Refused by the server API rate limit: 429 with `Retry-After` (whole seconds). */
export class ApiRateLimitedError extends ArqonError {
  constructor(
    /** Seconds until the credential has a request again. */
    readonly retryAfterSeconds: number,
  ) {
    super(ErrorCode.RATE_LIMITED, `too many server API requests with this credential: retry after ${retryAfterSeconds} s`);
  }
}

/**
 * A token bucket per credential id (operator key id, `<tenant>/<sub>` of a token, scrape token id). Buckets live in
 * one Map ordered by last use: a bucket touched moves to the end, and past `maxKeys` the least recently used one is
 * dropped, so however many different credentials arrive the memory stays bounded (a dropped bucket was the idlest:
 * its credential starts again with a full burst). One check is a Map lookup and some arithmetic.
 */
export class ApiRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly rate: number;
  private readonly burst: number;
  private readonly maxKeys: number;

  constructor(
    options: ApiRateLimitOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    const rate = options.perSecond ?? DEFAULT_API_RATE_PER_SECOND;
    const burst = options.burst ?? rate * 2;
    const maxKeys = options.maxKeys ?? DEFAULT_API_MAX_KEYS;
    if (!Number.isFinite(rate) || rate < 0) throw new ArqonError(ErrorCode.VALIDATION_ERROR, "http.apiRateLimit.perSecond must be a number >= 0");
    if (rate > 0 && (!Number.isFinite(burst) || burst < 1)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, "http.apiRateLimit.burst must be a number >= 1");
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) throw new ArqonError(ErrorCode.VALIDATION_ERROR, "http.apiRateLimit.maxKeys must be a whole number >= 1");
    this.rate = rate;
    this.burst = burst;
    this.maxKeys = maxKeys;
  }

  /** Buckets tracked now. */
  get size(): number {
    return this.buckets.size;
  }

  /** Spends one request of `key`; throws ApiRateLimitedError (ARQ_RATE_LIMITED) when it has none left. */
  take(key: string): void {
    if (this.rate === 0) return;
    const t = this.now();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.burst, last: t };
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    } else {
      this.buckets.delete(key);
      if (t > bucket.last) {
        bucket.tokens = Math.min(this.burst, bucket.tokens + ((t - bucket.last) * this.rate) / 1000);
        bucket.last = t;
      }
    }
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return;
    }
    throw new ApiRateLimitedError(Math.max(1, Math.ceil((1 - bucket.tokens) / this.rate)));
  }
}
