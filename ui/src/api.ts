import { hc, type ClientResponse } from 'hono/client'
import type { ApiRoutes } from '../../controller/src/app.ts'
import type { ErrorBody, ErrorCode } from '../../controller/src/errors.ts'

/** Codes the UI adds for failures that never produced an API error body. */
export type ClientErrorCode = 'NETWORK' | 'BAD_RESPONSE'

/** A failed API call, carrying the controller's `{"error":{"code","message"}}` shape. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode | ClientErrorCode,
    message: string,
    readonly details?: unknown,
    readonly requestId?: string,
    opts?: { cause?: unknown },
  ) {
    super(message, opts)
    this.name = 'ApiError'
  }
}

import type { ReadinessResponse as ReadinessReport, VersionResponse as VersionInfo } from '../../controller/src/system/routes.ts'

export type { ReadinessReport, VersionInfo }

export interface RequestOptions {
  /** Statuses besides 2xx whose body is a normal answer (e.g. 503 from /readyz). */
  accept?: readonly number[]
  signal?: AbortSignal
}

/** GETs JSON from the controller; any other outcome becomes an ApiError. */
export async function getJson<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  let res: Response
  try {
    res = await sessionFetch(path, { signal: opts.signal ?? null })
  } catch (cause) {
    throw new ApiError(0, 'NETWORK', `could not reach the controller (GET ${path})`, undefined, undefined, { cause })
  }
  const body = await readJson(res, path)
  if (res.ok || opts.accept?.includes(res.status)) return body as T
  throw toApiError(res, path, body)
}

async function readJson(res: Response, path: string): Promise<unknown> {
  const text = await res.text()
  if (text === '') return undefined
  try {
    return JSON.parse(text) as unknown
  } catch (cause) {
    if (!res.ok) return undefined
    throw new ApiError(res.status, 'BAD_RESPONSE', `${path} returned something other than JSON`, undefined, undefined, { cause })
  }
}

function toApiError(res: Response, path: string, body: unknown): ApiError {
  if (isErrorBody(body)) {
    const { code, message, details, request_id: requestId } = body.error
    return new ApiError(res.status, code, message, details, requestId)
  }
  const reason = res.statusText ? `${res.status} ${res.statusText}` : String(res.status)
  return new ApiError(res.status, 'BAD_RESPONSE', `${path} failed with HTTP ${reason}`)
}

function isErrorBody(body: unknown): body is ErrorBody {
  if (typeof body !== 'object' || body === null || !('error' in body)) return false
  const { error } = body
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' && 'message' in error && typeof error.message === 'string'
}

// ---- the typed API client --------------------------------------------------------------------

/** The double-submit CSRF cookie the controller sets at sign-in (readable on purpose). */
const CSRF_COOKIE = 'opsc_csrf'
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS'])

/** The CSRF cookie lives as long as the refresh token: without it there is no session to ask about. */
export const hasSessionCookie = () => csrfToken() !== undefined

function csrfToken(): string | undefined {
  return document.cookie
    .split(';')
    .map((c) => c.trim().split('='))
    .find(([k]) => k === CSRF_COOKIE)?.[1]
}

/** Called when the session is gone for good (refresh refused): the app shows the sign-in page. */
let onSessionLost: () => void = () => {}
export function whenSessionLost(fn: () => void): void {
  onSessionLost = fn
}

let refreshing: Promise<boolean> | null = null
/** One refresh for every request that found the access token expired at the same moment. */
function refreshSession(): Promise<boolean> {
  refreshing ??= fetch('/api/v1/auth/refresh', { method: 'POST', credentials: 'same-origin', headers: { 'x-csrf-token': csrfToken() ?? '' } })
    .then((r) => r.ok)
    .catch(() => false)
    .finally(() => setTimeout(() => (refreshing = null), 0))
  return refreshing
}

const NO_REFRESH = ['/api/v1/auth/login', '/api/v1/auth/refresh', '/api/v1/auth/logout']

/** fetch with the session cookies, the CSRF header on writes, and one silent refresh on a 401. */
export async function sessionFetch(input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> {
  const send = () => {
    const headers = new Headers(init.headers)
    const method = (init.method ?? 'GET').toUpperCase()
    if (!SAFE.has(method)) headers.set('x-csrf-token', csrfToken() ?? '')
    if (!headers.has('accept')) headers.set('accept', 'application/json')
    return fetch(input, { ...init, headers, credentials: 'same-origin' })
  }
  const res = await send()
  const url = typeof input === 'string' ? input : input instanceof URL ? input.pathname : input.url
  if (res.status !== 401 || NO_REFRESH.some((p) => url.includes(p))) return res
  if (await refreshSession()) return send()
  onSessionLost()
  return res
}

/** Every /api/v1 route, typed from the controller's own route definitions. */
export const api = hc<ApiRoutes>('/api/v1', { fetch: sessionFetch })

type SuccessStatus = 200 | 201 | 202 | 204
/** The body type of a route's successful answer. */
export type Ok<R> = R extends ClientResponse<infer T, infer S, infer _F> ? (S extends SuccessStatus ? T : never) : never

/**
 * Awaits a client call: its success body, or an ApiError carrying the controller's error
 * (`{error: {code, message, details}}`), a network failure or a non-JSON answer.
 */
export async function unwrap<R extends ClientResponse<unknown, number, string>>(call: Promise<R>, what = 'the request'): Promise<Ok<R>> {
  let res: R
  try {
    res = await call
  } catch (cause) {
    if (cause instanceof ApiError) throw cause
    throw new ApiError(0, 'NETWORK', `could not reach the controller (${what})`, undefined, undefined, { cause })
  }
  const body = await readJson(res as unknown as Response, res.url)
  if (res.ok) return body as Ok<R>
  throw toApiError(res as unknown as Response, res.url, body)
}

/** A JSON write outside the typed client (routes whose body the server parses itself take `unknown`). */
export async function send<T>(method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T> {
  let res: Response
  try {
    res = await sessionFetch(path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) })
  } catch (cause) {
    throw new ApiError(0, 'NETWORK', `could not reach the controller (${method} ${path})`, undefined, undefined, { cause })
  }
  const parsed = await readJson(res, path)
  if (res.ok) return parsed as T
  throw toApiError(res, path, parsed)
}

/** The field a 400's details name, by JSON path (`steps[0].url`), for inline form errors. */
export function fieldErrors(err: unknown): Record<string, string> {
  if (!(err instanceof ApiError) || !Array.isArray(err.details)) return {}
  const out: Record<string, string> = {}
  for (const d of err.details as { path?: unknown; message?: unknown }[]) {
    if (typeof d?.path === 'string' && typeof d.message === 'string') out[d.path] ??= d.message
  }
  return out
}

export const getVersion = (signal?: AbortSignal) => getJson<VersionInfo>('/api/v1/version', { signal })
export const getReadiness = (signal?: AbortSignal) => getJson<ReadinessReport>('/readyz', { accept: [503], signal })
