import { Hono } from 'hono'
import { PROTOCOL_VERSION } from '../../../proto/src/version.ts'
import { allow } from '../auth/access.ts'
import type { AppEnv } from '../context.ts'

/** Response shapes the web UI imports (type-only) so the two cannot drift. */
export interface ReadinessResponse {
  status: 'ready' | 'not_ready'
  /** Each value is `ok` or the reason the check failed. */
  checks: { database: string; migrations: string }
}

export interface VersionResponse {
  version: string
  protocol: { major: number; minor: number }
  installation_id: string
  node_id: string
  database: 'postgres' | 'pglite'
  started_at: string
}

/** Probes and facts about this controller. Public by design: load balancers and agents call them unauthenticated. */
export const systemRoutes = new Hono<AppEnv>()
  .get('/healthz', (c) => c.json({ status: 'ok' }))
  .get('/readyz', async (c) => {
    const report = await c.var.ctx.readiness.check()
    const body: ReadinessResponse = { status: report.ready ? 'ready' : 'not_ready', checks: report.checks }
    return c.json(body, report.ready ? 200 : 503)
  })
  .get('/metrics', async (c) => {
    const { registry } = c.var.ctx.metrics
    return c.body(await registry.metrics(), 200, { 'content-type': registry.contentType })
  })

export const versionRoutes = new Hono<AppEnv>().get('/version', allow('public'), (c) => {
  const { ctx } = c.var
  const body: VersionResponse = {
    version: ctx.version,
    protocol: { ...PROTOCOL_VERSION },
    installation_id: ctx.installationId,
    node_id: ctx.nodeId,
    database: ctx.database.target.kind,
    started_at: ctx.startedAt.toISOString(),
  }
  return c.json(body)
})
