import { appendAudit } from '../audit/service.ts'
import { SYSTEM_ACTOR } from '../auth/principal.ts'
import { isRole } from '../auth/roles.ts'
import type { Db } from '../db/client.ts'
import { ValidationError } from '../errors.ts'
import { parseWith } from '../http/validate.ts'
import { insertUser, resetPassword, Username } from './service.ts'

export async function createUserCommand(db: Db, opts: { username: string; role: string; password: string | undefined }) {
  if (!isRole(opts.role)) throw new ValidationError(`--role must be admin, operator or viewer (got "${opts.role}")`)
  const username = parseWith(Username, opts.username, '--username')
  const now = new Date()
  const { user, generatedPassword } = await insertUser(db, { username, role: opts.role, password: opts.password, must_change_password: opts.password === undefined }, now)
  await appendAudit(db, { actor: SYSTEM_ACTOR, action: 'users.create', resourceType: 'user', resourceId: user.id, outcome: 'success', summary: { username, role: user.role, via: 'cli' } }, now)
  const output = generatedPassword
    ? `created ${user.role} ${user.username}; password (must be changed at first sign-in): ${generatedPassword}`
    : `created ${user.role} ${user.username}`
  return { exitCode: 0, output }
}

export async function resetPasswordCommand(db: Db, username: string, password: string | undefined) {
  const result = await resetPassword(db, username, password, new Date())
  const output = result.generated
    ? `password of ${username} reset; new password (must be changed at first sign-in): ${result.password}`
    : `password of ${username} reset; their sessions were ended`
  return { exitCode: 0, output }
}
