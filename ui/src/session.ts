import { createSignal } from 'solid-js'
import type { Role } from '../../controller/src/auth/roles.ts'
import type { LoginInput } from '../../controller/src/auth/service.ts'
import { api, ApiError, hasSessionCookie, send, unwrap, whenSessionLost, type Ok } from './api.ts'

/*
 * Who is signed in. The tokens live in httpOnly cookies the page cannot read; what the page knows
 * is the answer of GET /auth/me: undefined while asking, null when signed out.
 */

export type Me = Ok<Awaited<ReturnType<typeof api.auth.me.$get>>>

const [me, setMe] = createSignal<Me | null | undefined>(undefined)
export { me }

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 }
/** Whether the signed-in user has at least this role (for hiding what they cannot use). */
export const can = (role: Role) => {
  const user = me()
  return !!user && RANK[user.role as Role] >= RANK[role]
}

/** Something the user must do before anything else: change a generated password, enrol MFA. */
export function pendingSetup(): 'password_change' | 'mfa_enrollment' | null {
  const user = me()
  if (!user) return null
  if (user.must_change_password) return 'password_change'
  if (user.mfa_enrollment_required) return 'mfa_enrollment'
  return null
}

export async function loadSession(): Promise<void> {
  // Signed out: say so without a request the browser would log as a failed (401) load.
  if (!hasSessionCookie()) return void setMe(null)
  try {
    setMe(await unwrap(api.auth.me.$get(), 'GET /auth/me'))
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) setMe(null)
    else throw err
  }
}

whenSessionLost(() => setMe(null))

export type SignInResult = { ok: true } | { ok: false; mfaRequired: boolean; error: ApiError }

export async function signIn(input: Pick<LoginInput, 'username' | 'password' | 'totp'>): Promise<SignInResult> {
  try {
    await send('POST', '/api/v1/auth/login', { ...input, use_cookies: true })
  } catch (err) {
    if (!(err instanceof ApiError)) throw err
    const mfaRequired = (err.details as { mfa_required?: boolean } | undefined)?.mfa_required === true
    return { ok: false, mfaRequired, error: err }
  }
  await loadSession()
  return { ok: true }
}

export async function signOut(): Promise<void> {
  try {
    await send('POST', '/api/v1/auth/logout')
  } finally {
    setMe(null)
  }
}

/** After the profile changed (password, MFA): read it again. */
export const refreshMe = loadSession
