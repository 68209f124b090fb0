import type { Hono } from 'hono'
import { signAccessToken } from '../../controller/src/auth/jwt.ts'
import type { Role } from '../../controller/src/auth/roles.ts'
import { createSession } from '../../controller/src/auth/sessions.ts'
import type { AppContext, AppEnv } from '../../controller/src/context.ts'
import { insertUser, type UserDto } from '../../controller/src/users/service.ts'

export interface TestUser {
  user: UserDto
  password: string
  /** A valid access token for a fresh session of this user. */
  token: string
  sessionId: string
  refreshToken: string
}

let counter = 0

/** A user with a known password and a signed-in session (without going through /login's scrypt and throttling). */
export async function createTestUser(ctx: AppContext, role: Role, opts: { username?: string; password?: string } = {}): Promise<TestUser> {
  const username = opts.username ?? `${role}-${process.pid}-${++counter}`
  const password = opts.password ?? `pw-${counter}-${Math.random().toString(36).slice(2)}-Long-Enough`
  const { user } = await insertUser(ctx.db, { username, password, role, must_change_password: false }, ctx.clock())
  const session = await createSession(ctx.db, { userId: user.id, clientAddress: null, userAgent: 'test' }, ctx.clock())
  const { token } = await signAccessToken(ctx.keyring, { userId: user.id, sessionId: session.sessionId, role }, ctx.clock())
  return { user, password, token, sessionId: session.sessionId, refreshToken: session.refreshToken }
}

export interface CallResult<T = any> {
  status: number
  body: T
  headers: Headers
}

/** One JSON API call against an in-process app. */
export async function call<T = any>(
  app: Hono<AppEnv>,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<CallResult<T>> {
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`
  if (opts.body !== undefined) headers['content-type'] = 'application/json'
  const res = await app.request(path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) })
  const text = await res.text()
  let body: unknown = text
  try {
    body = text ? JSON.parse(text) : undefined
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, body: body as T, headers: res.headers }
}

/** `call` bound to one app and one user: `as(op).post('/api/v1/…', body)`. */
export function callerFor(app: Hono<AppEnv>) {
  return (user: TestUser) => ({
    get: (path: string) => call(app, 'GET', path, { token: user.token }),
    post: (path: string, body: unknown = {}) => call(app, 'POST', path, { token: user.token, body }),
    put: (path: string, body: unknown) => call(app, 'PUT', path, { token: user.token, body }),
    del: (path: string) => call(app, 'DELETE', path, { token: user.token }),
  })
}

/** The JSON paths a 400's details name. */
export const errorPaths = (body: any): string[] => body.error.details.map((d: { path: string }) => d.path)
