import type { Context, MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { AppEnv } from '../context.ts'
import { AppError, RateLimitedError } from '../errors.ts'

/** Routes that legitimately take big bodies (whole export files), and their own limit. */
export const LARGE_BODY_BYTES = 32 * 1024 * 1024
const LARGE_BODY_ROUTES: ReadonlyArray<{ method: string; path: RegExp }> = [
  { method: 'POST', path: /^\/api\/v1\/targets\/import\/?$/ },
  { method: 'POST', path: /^\/api\/v1\/jobs\/import\/?$/ },
]

/** The body limit of one request: the large one for import routes (never below the default), else the default. */
export function bodyLimitFor(method: string, path: string, defaultBytes: number): number {
  const large = LARGE_BODY_ROUTES.some((r) => r.method === method && r.path.test(path))
  return large ? Math.max(LARGE_BODY_BYTES, defaultBytes) : defaultBytes
}

const mib = (bytes: number) => (bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`)

/**
 * Refuses request bodies over the limit with 413 in the shared error shape. A declared
 * Content-Length over the limit is refused before any byte is read; a chunked body is counted as it
 * streams in and refused as soon as it passes the limit (never buffered beyond it).
 */
export function requestBodyLimit(defaultBytes: number): MiddlewareHandler<AppEnv> {
  const limiters = new Map<number, MiddlewareHandler>()
  const limiter = (max: number) => {
    let l = limiters.get(max)
    if (!l) {
      l = bodyLimit({
        maxSize: max,
        onError: () => {
          throw new AppError('PAYLOAD_TOO_LARGE', `request body over the limit of ${mib(max)} for this route`, { limit_bytes: max })
        },
      })
      limiters.set(max, l)
    }
    return l
  }
  return (c, next) => {
    const declared = c.req.header('content-length')
    // A Content-Length that is not a plain number would slip past the limiter's parseInt; refuse it.
    if (declared !== undefined && !/^\s*\d+\s*$/.test(declared)) throw new AppError('VALIDATION', 'Content-Length must be a number of bytes')
    return limiter(bodyLimitFor(c.req.method, c.req.path, defaultBytes))(c, next) as Promise<void>
  }
}

export interface RateLimitOptions {
  /** Sustained requests per second per client; 0 disables the limit. */
  rps: number
  /** Requests a client may make at once before the sustained rate applies. */
  burst: number
  /** Milliseconds clock (tests pass a fake one). */
  now?: () => number
  /** Buckets kept at most; the idlest (fullest) are dropped first when it is reached. */
  maxClients?: number
}

interface Bucket {
  tokens: number
  at: number
}

/**
 * Token buckets per client: one for each signed-in principal (user or API token), otherwise one per
 * client IP. In-memory and per controller: N controllers behind a balancer allow N× the rate.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>()
  private readonly now: () => number
  private readonly maxClients: number

  constructor(
    readonly rps: number,
    readonly burst: number,
    opts: { now?: () => number; maxClients?: number } = {},
  ) {
    this.now = opts.now ?? (() => performance.now())
    this.maxClients = opts.maxClients ?? 100_000
  }

  /** Takes one token for `key`: 0 when allowed, else the seconds until one is available. */
  take(key: string): number {
    const now = this.now()
    let bucket = this.buckets.get(key)
    if (bucket) {
      bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.rps)
      bucket.at = now
      // Most recently used last, so pruning drops the idlest.
      this.buckets.delete(key)
      this.buckets.set(key, bucket)
    } else {
      if (this.buckets.size >= this.maxClients) this.prune(now)
      bucket = { tokens: this.burst, at: now }
      this.buckets.set(key, bucket)
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return 0
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.rps))
  }

  get size(): number {
    return this.buckets.size
  }

  /** Drops buckets that have refilled (forgetting them changes nothing), else the least recently used. */
  private prune(now: number): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.rps >= this.burst) this.buckets.delete(key)
    }
    while (this.buckets.size >= this.maxClients) {
      const oldest = this.buckets.keys().next().value
      if (oldest === undefined) break
      this.buckets.delete(oldest)
    }
  }
}

/** The rate-limit key of a request: its principal, else its client IP; null when there is no client to limit. */
export function rateLimitKey(c: Context<AppEnv>): string | null {
  const principal = c.get('principal')
  if (principal) return principal.kind === 'api_token' ? `token:${principal.tokenId}` : `user:${principal.userId}`
  const address = c.get('clientAddress')
  return address ? `ip:${address}` : null
}

/**
 * Per-client rate limit: 429 RATE_LIMITED with Retry-After once a client's bucket is empty. Runs
 * after authentication (it keys by principal). Requests without a socket (in-process test calls)
 * have no client and are not limited.
 */
export function rateLimit(opts: RateLimitOptions): MiddlewareHandler<AppEnv> {
  if (opts.rps <= 0) return (_c, next) => next()
  const buckets = new TokenBuckets(opts.rps, Math.max(1, opts.burst), { now: opts.now, maxClients: opts.maxClients })
  return async (c, next) => {
    const key = rateLimitKey(c)
    if (key !== null) {
      const wait = buckets.take(key)
      if (wait > 0) throw new RateLimitedError(`too many requests; slow down and retry in ${wait} s`, wait)
    }
    await next()
  }
}

/**
 * Postgres text cannot hold NUL, so a `%00` anywhere in the request target (path or query) could
 * only end as a database error: refuse it up front as a 400.
 */
export function rejectNulInUrl(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (/%00/.test(c.req.url)) throw new AppError('VALIDATION', 'the URL must not contain NUL characters (%00)')
    await next()
  }
}
