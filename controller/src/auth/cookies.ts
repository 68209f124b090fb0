import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { Context } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import { ACCESS_TOKEN_TTL_SECONDS } from './jwt.ts'
import { REFRESH_TOKEN_TTL_MS } from './sessions.ts'

/** The web UI's session: the same tokens as the API clients get, kept in cookies JS cannot read. */
export const ACCESS_COOKIE = 'opsc_access'
export const REFRESH_COOKIE = 'opsc_refresh'
/** Double-submit CSRF token: readable by the UI, echoed in the X-CSRF-Token header. */
export const CSRF_COOKIE = 'opsc_csrf'
export const CSRF_HEADER = 'x-csrf-token'
const REFRESH_PATH = '/api/v1/auth'

const base = { secure: true, sameSite: 'Strict', path: '/' } as const

export function setSessionCookies(c: Context, tokens: { accessToken: string; refreshToken: string }): string {
  const csrf = randomBytes(24).toString('base64url')
  setCookie(c, ACCESS_COOKIE, tokens.accessToken, { ...base, httpOnly: true, maxAge: ACCESS_TOKEN_TTL_SECONDS })
  setCookie(c, REFRESH_COOKIE, tokens.refreshToken, { ...base, path: REFRESH_PATH, httpOnly: true, maxAge: REFRESH_TOKEN_TTL_MS / 1000 })
  setCookie(c, CSRF_COOKIE, csrf, { ...base, httpOnly: false, maxAge: REFRESH_TOKEN_TTL_MS / 1000 })
  return csrf
}

export function clearSessionCookies(c: Context): void {
  deleteCookie(c, ACCESS_COOKIE, { ...base })
  deleteCookie(c, REFRESH_COOKIE, { ...base, path: REFRESH_PATH })
  deleteCookie(c, CSRF_COOKIE, { ...base })
}

export const accessCookie = (c: Context) => getCookie(c, ACCESS_COOKIE)
export const refreshCookie = (c: Context) => getCookie(c, REFRESH_COOKIE)

/** True when the CSRF header matches the CSRF cookie (compared in constant time). */
export function csrfMatches(c: Context): boolean {
  const cookie = getCookie(c, CSRF_COOKIE)
  const header = c.req.header(CSRF_HEADER)
  if (!cookie || !header || cookie.length !== header.length) return false
  return timingSafeEqual(Buffer.from(cookie), Buffer.from(header))
}

export const isSafeMethod = (method: string) => method === 'GET' || method === 'HEAD' || method === 'OPTIONS'
