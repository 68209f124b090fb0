// Shared pieces of the fuzz tests: a seeded PRNG, hostile values, random JSON, and a raw HTTPS client
// that sends paths and bodies byte for byte (no URL normalisation, no re-encoding).
import { Agent, request } from 'node:https'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { mulberry32 } from '../harness/prng.ts'

export class Rng {
  readonly next: () => number
  constructor(seed: number) {
    this.next = mulberry32(seed)
  }
  int(max: number): number {
    return Math.floor(this.next() * max)
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!
  }
  chance(p: number): boolean {
    return this.next() < p
  }
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) out[i] = this.int(256)
    return out
  }
  uuid(): string {
    const hex = this.bytes(16).toString('hex')
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`
  }
  string(max = 40): string {
    const alphabet = 'abcXYZ019 -_./\\\'"`$;|&<>{}[]()%*?!#@~^=+,:\u0000\u0007\n\r\t\u00e9\u4e2d\u{1f600}\u202e\ufeff\ud800'
    let s = ''
    const n = this.int(max)
    for (let i = 0; i < n; i++) s += this.pick([...alphabet])
    return s
  }
}

/** Strings that have broken web apps before: injections, traversal, encodings, sizes, types in disguise. */
export const HOSTILE_STRINGS: readonly string[] = [
  '',
  ' ',
  '0',
  '-1',
  '1e309',
  'NaN',
  'null',
  'undefined',
  'true',
  '[]',
  '{}',
  "' OR 1=1--",
  "'; DROP TABLE app_user; --",
  '" OR ""="',
  '1; SELECT pg_sleep(10)',
  "admin'--",
  '../../etc/passwd',
  '..\\..\\windows\\win.ini',
  '/etc/shadow',
  'file:///etc/passwd',
  '%00',
  'a\u0000b',
  '%zz',
  '%',
  '%C0%AE%C0%AE/',
  '%FF%FE',
  '<script>alert(1)</script>',
  '{{ 7*7 }}',
  '${jndi:ldap://x/a}',
  '$(id)',
  '`id`',
  '\u202egnp.exe',
  '\ud800',
  '\ufeff',
  'Ω≈ç√∫˜µ≤≥÷',
  '田中さんにあげて下さい',
  '😀'.repeat(50),
  'a'.repeat(10_000),
  '9'.repeat(400),
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '__proto__',
  'constructor',
  'prototype',
  '*',
  '?',
  '#',
  '\r\nX-Injected: 1',
]

/** Path parameter values, already in the form that goes on the wire (some deliberately mis-encoded). */
export function hostilePathValue(rng: Rng): string {
  switch (rng.int(6)) {
    case 0:
      return rng.uuid()
    case 1:
      return encodeURIComponentSafe(rng.string(30)) // lone surrogates become invalid UTF-8 bytes
    case 2:
      // Raw, un-encoded traversal and broken escapes.
      return rng.pick(['../../etc/passwd', '..%2F..%2Fetc%2Fpasswd', '%zz', '%', '%00', '%C0%AE%C0%AE', '%FF%FE%FD', '.', '..', '%2e%2e', 'a%2Fb', String(rng.int(1e9)), '-1', '1.5', 'a'.repeat(5000)])
    default:
      return encodeURIComponentSafe(rng.pick(HOSTILE_STRINGS))
  }
}

/** encodeURIComponent that maps a lone surrogate to its (invalid UTF-8) bytes instead of throwing. */
export function encodeURIComponentSafe(s: string): string {
  try {
    return encodeURIComponent(s)
  } catch {
    return [...s].map((ch) => (/[\ud800-\udfff]/.test(ch) ? '%ED%A0%80' : encodeURIComponent(ch))).join('')
  }
}

const FIELD_NAMES = [
  'name', 'id', 'ids', 'steps', 'type', 'host', 'address', 'port', 'username', 'password', 'role', 'tags', 'selector', 'target_ids',
  'action', 'cron', 'timezone', 'enabled', 'url', 'config', 'secret', 'params', 'parameters', 'version', 'description', 'members',
  'limit', 'cursor', 'connection', 'credential_id', 'job_id', 'target_id', 'targets', 'seconds', 'command', 'script', 'shell',
  'email', 'display_name', 'token', 'refresh_token', 'code', 'otp', 'expires_in_seconds', 'max_uses', 'starts_at', 'ends_at',
  'rate_limit_per_minute', 'events', 'channel_ids', 'filters', 'max_parallel', 'failure_threshold', 'timeout_seconds', 'retry',
  'current_password', 'new_password', 'private_key', 'passphrase', 'group_ids', 'dry_run', 'misfire', 'policy', 'user_id',
  '__proto__', 'constructor',
]

/** A random JSON value of random shape (bounded size). */
export function randomJson(rng: Rng, depth = 0): unknown {
  const kind = rng.int(depth > 3 ? 6 : 9)
  switch (kind) {
    case 0:
      return null
    case 1:
      return rng.chance(0.5)
    case 2:
      return rng.pick([0, -1, 1, 2 ** 31, 2 ** 53 + 1, -(2 ** 63), 1e308, -1e-308, 0.5, 65536, 99999999999, rng.int(100)])
    case 3:
    case 4:
      return rng.pick(HOSTILE_STRINGS.filter((s) => s.length < 1000))
    case 5:
      return rng.string()
    case 6:
    case 7: {
      const obj: Record<string, unknown> = {}
      const n = rng.int(6)
      for (let i = 0; i < n; i++) obj[rng.chance(0.8) ? rng.pick(FIELD_NAMES) : rng.string(12)] = randomJson(rng, depth + 1)
      return obj
    }
    default:
      return Array.from({ length: rng.int(5) }, () => randomJson(rng, depth + 1))
  }
}

/** An object with plausible field names but values of the wrong type. */
export function wrongTypes(rng: Rng): Record<string, unknown> {
  const wrong = () =>
    rng.pick<unknown>([null, true, 0, -1, 1e309 === Infinity ? 1e308 : 0, '', 'x', [], {}, [1, 'a', null], { $gt: '' }, { nested: { deeper: [] } }, 'a'.repeat(70_000), rng.uuid()])
  const out: Record<string, unknown> = {}
  const n = 1 + rng.int(8)
  for (let i = 0; i < n; i++) out[rng.pick(FIELD_NAMES)] = wrong()
  return out
}

/** JSON nested far deeper than any schema (deep recursion in parsers and validators). */
export function deeplyNested(rng: Rng, depth: number): string {
  if (rng.chance(0.5)) return '['.repeat(depth) + ']'.repeat(depth)
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)
}

/** Bytes that are not valid UTF-8 (overlong forms, lone continuation bytes, surrogates, 0xFF). */
export function invalidUtf8(rng: Rng): Buffer {
  const bad = [Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xff]), Buffer.from([0x80, 0x80]), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80])]
  const parts: Buffer[] = [Buffer.from('{"name":"')]
  for (let i = 0; i < 1 + rng.int(10); i++) parts.push(rng.pick(bad), Buffer.from(rng.string(5)))
  parts.push(Buffer.from('"}'))
  if (rng.chance(0.3)) return rng.bytes(1 + rng.int(2000))
  return Buffer.concat(parts)
}

export interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

export interface RawRequest {
  method: string
  path: string
  headers: Record<string, string>
  body?: Buffer
  /** Send the body with Transfer-Encoding: chunked (no Content-Length). */
  chunked?: boolean
}

/** A keep-alive HTTPS client trusting exactly `ca`; the path goes on the wire as given. */
export function rawClient(port: number, ca: string, maxSockets = 8) {
  const agent = new Agent({ keepAlive: true, maxSockets, ca })
  const send = (req: RawRequest, timeoutMs = 30_000, fresh = false): Promise<RawResponse> =>
    new Promise((resolve, reject) => {
      // Frame the body explicitly: Node's client sends a GET/DELETE body without Content-Length otherwise.
      const headers = { ...req.headers }
      if (req.body && req.chunked) headers['transfer-encoding'] = 'chunked'
      else if (req.body) headers['content-length'] = String(req.body.length)
      let r
      try {
        r = request({ host: '127.0.0.1', servername: 'localhost', port, path: req.path, method: req.method, headers, agent: fresh ? false : agent, ca, timeout: timeoutMs }, (res) => {
          const chunks: Buffer[] = []
          res.on('data', (d: Buffer) => chunks.push(d))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
          res.on('error', reject)
        })
      } catch (err) {
        reject(err)
        return
      }
      r.on('timeout', () => r.destroy(new Error(`no response within ${timeoutMs} ms`)))
      r.on('error', reject)
      if (req.body && req.chunked) {
        // Several writes: Node sends Transfer-Encoding: chunked.
        for (let i = 0; i < req.body.length; i += 256 * 1024) r.write(req.body.subarray(i, i + 256 * 1024))
        r.end()
      } else r.end(req.body)
    })
  return { send, close: () => agent.destroy() }
}

let gcFn: (() => void) | undefined
/** Full GC (without --expose-gc on the command line), then RSS and heap in MiB. */
export async function settledMemory(): Promise<{ rssMiB: number; heapMiB: number }> {
  if (!gcFn) {
    setFlagsFromString('--expose-gc')
    gcFn = runInNewContext('gc') as () => void
  }
  for (let i = 0; i < 3; i++) {
    gcFn()
    await new Promise((r) => setTimeout(r, 100))
  }
  const m = process.memoryUsage()
  return { rssMiB: Math.round(m.rss / 1048576), heapMiB: Math.round(m.heapUsed / 1048576) }
}
