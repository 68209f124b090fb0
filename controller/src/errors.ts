import type { ContentfulStatusCode } from 'hono/utils/http-status'

/** The closed set of error codes the API (and later the gRPC gateway) can return. */
export type ErrorCode =
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'VALIDATION'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'PRECONDITION_FAILED'
  | 'PAYLOAD_TOO_LARGE'
  | 'RATE_LIMITED'
  | 'UNAVAILABLE'
  | 'INTERNAL'

export const HTTP_STATUS: Record<ErrorCode, ContentfulStatusCode> = {
  NOT_FOUND: 404,
  CONFLICT: 409,
  VALIDATION: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  PRECONDITION_FAILED: 412,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  INTERNAL: 500,
}

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    opts?: { cause?: unknown },
  ) {
    super(message, opts)
    this.name = new.target.name
  }
}

export class NotFoundError extends AppError {
  constructor(entity: string, id?: string) {
    super('NOT_FOUND', id === undefined ? `${entity} not found` : `${entity} ${id} not found`)
  }
}

export class ValidationError extends AppError {
  constructor(message: string, details?: unknown) {
    super('VALIDATION', message, details)
  }
}

export class UnavailableError extends AppError {
  constructor(message: string, opts?: { cause?: unknown }) {
    super('UNAVAILABLE', message, undefined, opts)
  }
}

export class RateLimitedError extends AppError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super('RATE_LIMITED', message, { retry_after_seconds: retryAfterSeconds })
  }
}

/** The one error body shape every API edge returns. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown; request_id?: string }
}

export function errorBody(code: ErrorCode, message: string, extra?: { details?: unknown; requestId?: string }): ErrorBody {
  const body: ErrorBody = { error: { code, message } }
  if (extra?.details !== undefined) body.error.details = extra.details
  if (extra?.requestId !== undefined) body.error.request_id = extra.requestId
  return body
}
