import type { Role } from './roles.ts'

/**
 * What a signed-in user may do before anything else: change the generated password, or enrol
 * MFA when an admin requires it. Only routes declared with `{ setup: true }` are open meanwhile.
 */
export type Restriction = 'password_change' | 'mfa_enrollment' | null

/** Who is calling. Built fresh from the database on every request, so role changes and disabling apply at once. */
export type Principal =
  | {
      kind: 'user'
      userId: string
      username: string
      role: Role
      sessionId: string
      via: 'bearer' | 'cookie'
      restriction: Restriction
    }
  | { kind: 'api_token'; userId: string; username: string; role: Role; tokenId: string; tokenName: string; restriction: null }

/** The actor recorded in the audit trail. */
export interface Actor {
  type: 'user' | 'api_token' | 'system' | 'agent' | 'anonymous'
  id: string | null
  name: string | null
}

export function actorOf(principal: Principal | undefined): Actor {
  if (!principal) return { type: 'anonymous', id: null, name: null }
  if (principal.kind === 'api_token') return { type: 'api_token', id: principal.tokenId, name: `${principal.username}/${principal.tokenName}` }
  return { type: 'user', id: principal.userId, name: principal.username }
}

export const SYSTEM_ACTOR: Actor = { type: 'system', id: null, name: 'system' }
