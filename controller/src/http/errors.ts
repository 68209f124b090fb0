import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { AppEnv } from '../context.ts'
import { AppError, errorBody, HTTP_STATUS, RateLimitedError, type ErrorCode } from '../errors.ts'

const CODE_FOR_STATUS: Partial<Record<number, ErrorCode>> = {
  400: 'VALIDATION',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  412: 'PRECONDITION_FAILED',
  413: 'PAYLOAD_TOO_LARGE',
  429: 'RATE_LIMITED',
  503: 'UNAVAILABLE',
}

/** The single place errors become responses: known ones keep their code, anything else is a bare 500. */
export function onError(err: Error, c: Context<AppEnv>) {
  const requestId = c.get('requestId')
  if (err instanceof AppError) {
    if (err instanceof RateLimitedError) c.header('Retry-After', String(err.retryAfterSeconds))
    return c.json(errorBody(err.code, err.message, { details: err.details, requestId }), HTTP_STATUS[err.code])
  }
  if (err instanceof HTTPException && err.status < 500) {
    const code = CODE_FOR_STATUS[err.status] ?? 'VALIDATION'
    return c.json(errorBody(code, err.message || 'bad request', { requestId }), err.status as ContentfulStatusCode)
  }
  c.get('log')?.error({ err, requestId }, 'http.unhandled_error')
  return c.json(errorBody('INTERNAL', 'internal error; see the controller log for this request id', { requestId }), 500)
}

export function apiNotFound(c: Context<AppEnv>) {
  return c.json(
    errorBody('NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`, { requestId: c.get('requestId') }),
    404,
  )
}
