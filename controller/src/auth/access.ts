import type { Hono, MiddlewareHandler } from 'hono'
import type { AppEnv } from '../context.ts'
import { AppError } from '../errors.ts'
import { roleAtLeast, type Role } from './roles.ts'

/** `public`: no authentication; otherwise the lowest role allowed (roles are ordered viewer < operator < admin). */
export type Access = 'public' | Role

export interface AccessOptions {
  /** Open to a user who must first change their password or enrol MFA. */
  setup?: boolean
}

const ACCESS = Symbol('opsc.access')
type AccessMiddleware = MiddlewareHandler<AppEnv> & { [ACCESS]: Access }

const RESTRICTION_MESSAGE = {
  password_change: 'change your password first (PUT /api/v1/auth/me)',
  mfa_enrollment: 'multi-factor authentication is required: enrol TOTP first (POST /api/v1/auth/mfa/totp/enroll)',
} as const

/**
 * Declares who may call a route; written next to the route: `.get('/', allow('viewer'), handler)`.
 * Authentication ran earlier (auth middleware); this decides, and a route without it does not start.
 */
export function allow(access: Access, opts: AccessOptions = {}): MiddlewareHandler<AppEnv> {
  const mw = (async (c, next) => {
    if (access !== 'public') {
      const principal = c.get('principal')
      if (!principal) {
        const failure = c.get('authFailure')
        throw new AppError(failure?.code ?? 'UNAUTHENTICATED', failure?.message ?? 'authentication required')
      }
      if (!roleAtLeast(principal.role, access)) {
        throw new AppError('FORBIDDEN', `this action needs the ${access} role; you are ${principal.role}`)
      }
      if (principal.restriction && !opts.setup) {
        throw new AppError('FORBIDDEN', RESTRICTION_MESSAGE[principal.restriction], { restriction: principal.restriction })
      }
    }
    await next()
  }) as AccessMiddleware
  mw[ACCESS] = access
  return mw
}

export interface DeclaredRoute {
  method: string
  path: string
  access: Access
}

/**
 * Every method route under /api must carry an `allow(...)` declaration. Called when the app is
 * built, so a route without one stops the controller from starting (and fails the test suite).
 */
export function declaredRoutes(app: Hono<AppEnv>, prefix = '/api/'): DeclaredRoute[] {
  const byRoute = new Map<string, { method: string; path: string; access?: Access }>()
  for (const r of app.routes) {
    if (r.method === 'ALL' || !r.path.startsWith(prefix)) continue
    const key = `${r.method} ${r.path}`
    const entry = byRoute.get(key) ?? { method: r.method, path: r.path }
    const access = (r.handler as Partial<AccessMiddleware>)[ACCESS]
    if (access) entry.access = access
    byRoute.set(key, entry)
  }
  const missing = [...byRoute.values()].filter((r) => !r.access)
  if (missing.length > 0) {
    throw new Error(`routes without an access declaration (allow(...)): ${missing.map((r) => `${r.method} ${r.path}`).join(', ')}`)
  }
  return [...byRoute.values()] as DeclaredRoute[]
}
