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
    res = await fetch(path, { headers: { accept: 'application/json' }, signal: opts.signal })
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
    throw new ApiError(res.status, 'BAD_RESPONSE', `GET ${path} returned something other than JSON`, undefined, undefined, { cause })
  }
}

function toApiError(res: Response, path: string, body: unknown): ApiError {
  if (isErrorBody(body)) {
    const { code, message, details, request_id: requestId } = body.error
    return new ApiError(res.status, code, message, details, requestId)
  }
  const reason = res.statusText ? `${res.status} ${res.statusText}` : String(res.status)
  return new ApiError(res.status, 'BAD_RESPONSE', `GET ${path} failed with HTTP ${reason}`)
}

function isErrorBody(body: unknown): body is ErrorBody {
  if (typeof body !== 'object' || body === null || !('error' in body)) return false
  const { error } = body
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' && 'message' in error && typeof error.message === 'string'
}

export const getVersion = (signal?: AbortSignal) => getJson<VersionInfo>('/api/v1/version', { signal })
export const getReadiness = (signal?: AbortSignal) => getJson<ReadinessReport>('/readyz', { accept: [503], signal })
