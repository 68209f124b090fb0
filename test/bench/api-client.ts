// What the output and api benches share: controller processes on one Postgres database, an API
// token, and JSON calls over the controllers' real HTTPS listeners.
import { randomBytes } from 'node:crypto'
import os from 'node:os'
import { createApiToken } from '../../controller/src/api-tokens/service.ts'
import type { Role } from '../../controller/src/auth/roles.ts'
import type { AppContext } from '../../controller/src/context.ts'
import { createTestUser } from '../harness/auth.ts'
import { createTestContext, type TestContext } from '../harness/context.ts'
import { startControllerProcess, tempDataDir, type ControllerProcess } from '../harness/controller-process.ts'
import { httpsRequest } from '../harness/https.ts'

/** A fresh migrated database (this process's ctx, for seeding) and `count` controller processes on it. */
export interface Cluster {
  t: TestContext
  controllers: ControllerProcess[]
  /** Rejects when a controller exits before stop(): race waits against it rather than hang. */
  died: Promise<never>
  stop(): Promise<void>
}

export async function startCluster(count: number, env: Record<string, string> = {}): Promise<Cluster> {
  const masterKey = randomBytes(32) // shared: every controller opens the same sealed secrets and signs the same tokens
  const t = await createTestContext({ masterKey })
  const shared = { DATABASE_URL: t.testDb.url!, OPSC_MASTER_KEY: masterKey.toString('base64'), ...env }
  const controllers: ControllerProcess[] = []
  let stopping = false
  let die: (err: Error) => void = () => {}
  const died = new Promise<never>((_, reject) => (die = reject))
  died.catch(() => {}) // only raced against
  const stop = async () => {
    stopping = true
    for (const c of controllers) await c.stop('SIGTERM').catch(() => c.stop('SIGKILL'))
    await t.close()
  }
  try {
    // One at a time: cold starts at once on two cores only slow each other.
    for (let i = 0; i < count; i++) {
      const c = await startControllerProcess({ dataDir: tempDataDir(), env: shared })
      c.proc.once('exit', (code, signal) => {
        if (!stopping) die(new Error(`controller ${i} (pid ${c.proc.pid}) exited (${signal ?? code}): ${c.stderr().slice(-2000)}`))
      })
      controllers.push(c)
    }
  } catch (err) {
    await stop()
    throw err
  }
  return { t, controllers, died, stop }
}

/** An API token of a new user with `role` (tokens live in the database, so every controller takes them). */
export async function apiToken(ctx: AppContext, role: Role): Promise<string> {
  const { user } = await createTestUser(ctx, role)
  const principal = { kind: 'user', userId: user.id, username: user.username, role, sessionId: '', via: 'bearer', restriction: null } as const
  return (await createApiToken(ctx, principal, { name: 'bench' })).token
}

/** JSON calls to one controller's HTTPS API with a bearer token. */
export class HttpsApi {
  constructor(
    readonly controller: ControllerProcess,
    readonly token: string,
  ) {}

  async call<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await httpsRequest(`${this.controller.baseUrl}${path}`, {
      ca: this.controller.ca,
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      timeoutMs: 60_000,
    })
    return { status: res.status, body: res.body ? res.json<T>() : (undefined as T) }
  }

  async expect<T = any>(status: number, method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.call<T>(method, path, body)
    if (res.status !== status) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`)
    return res.body
  }
}

/** The 1-minute load average, for the recorded figures (other work on a shared machine moves them). */
export const load = () => os.loadavg()[0]!.toFixed(2)
