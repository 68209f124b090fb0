import { after, before } from 'node:test'
import { createApp } from '../../controller/src/app.ts'
import type { Role } from '../../controller/src/auth/roles.ts'
import { callerFor, createTestUser, type TestUser } from './auth.ts'
import { createTestContext, type TestContext } from './context.ts'

export interface ApiTestApp<R extends Role> {
  t: TestContext
  app: ReturnType<typeof createApp>
  users: Record<R, TestUser>
  /** `call` as one of the users (by role) or any other user: `as('operator').post('/api/v1/…', body)`. */
  as: (who: R | TestUser) => ReturnType<ReturnType<typeof callerFor>>
}

/**
 * The usual route-test setup, registered as the file's before/after hooks: a test context, the app
 * over it, one user per role asked for, then the file's own `setup` (in the same hook: a second
 * top-level `before` is not guaranteed to wait for this one). Fields are filled in once it has run.
 */
export function useApiTestApp<R extends Role>(roles: R[], setup?: (api: ApiTestApp<R>) => Promise<void>): ApiTestApp<R> {
  const env = {
    as: (who: R | TestUser) => callerFor(env.app)(typeof who === 'string' ? env.users[who] : who),
  } as ApiTestApp<R>
  before(async () => {
    env.t = await createTestContext()
    env.app = createApp(env.t.ctx, { uiDir: '/nonexistent' })
    env.users = {} as Record<R, TestUser>
    for (const role of roles) env.users[role] = await createTestUser(env.t.ctx, role)
    await setup?.(env)
  })
  after(() => env.t?.close())
  return env
}
