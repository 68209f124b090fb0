import { Hono } from 'hono'
import { allow } from '../auth/access.ts'
import type { AppEnv } from '../context.ts'
import { PageQuery, parseQuery } from '../http/pagination.ts'
import { readJson } from '../http/validate.ts'
import {
  createEnrollmentToken,
  CreateEnrollmentTokenInput,
  enrollCommands,
  enrollmentTokenAgents,
  enrollmentTokenDto,
  listEnrollmentTokens,
  revokeEnrollmentToken,
} from './enrollment.ts'
import { agentCounts, getAgent, listAgents, ListAgentsQuery, removeAgent, revokeAgent } from './service.ts'

/** `host:port` agents dial: the host the admin reached the API by, the gRPC port. IPv6 stays bracketed. */
function controllerAddress(hostHeader: string | undefined, requestUrl: string, grpcPort: number): string {
  let host: string
  try {
    host = new URL(`https://${hostHeader || new URL(requestUrl).host}`).hostname
  } catch {
    host = new URL(requestUrl).hostname
  }
  return `${host || 'localhost'}:${grpcPort}`
}

/** Agents and their enrollment; mounted at /api/v1/agents. */
export const agentsRoutes = new Hono<AppEnv>()
  .post('/enrollment-tokens', allow('admin'), async (c) => {
    const input = await readJson(c, CreateEnrollmentTokenInput)
    const ctx = c.var.ctx
    const { row, token } = await createEnrollmentToken(ctx, c.get('principal'), input)
    const caFingerprint = ctx.caFingerprint ?? null
    const controller = controllerAddress(c.req.header('host'), c.req.url, ctx.grpcPort ?? ctx.config.OPSC_GRPC_PORT)
    c.set('audit', {
      action: 'agents.enrollment_tokens.create',
      resourceType: 'enrollment_token',
      resourceId: row.id,
      summary: { name: row.name, prefix: row.prefix, max_uses: row.maxUses, expires_at: row.expiresAt.toISOString(), tags: row.tags, group_id: row.groupId },
    })
    const dto = enrollmentTokenDto(row, ctx.clock())
    return c.json({ ...dto, token, ca_fingerprint: caFingerprint, controller, commands: enrollCommands(controller, token, caFingerprint) }, 201)
  })
  .get('/enrollment-tokens', allow('admin'), async (c) => c.json(await listEnrollmentTokens(c.var.ctx, parseQuery(PageQuery, c.req.query()))))
  // The enrol wizard's poll: the token's uses and the agents enrolled with it (online or not).
  .get('/enrollment-tokens/:id/agents', allow('admin'), async (c) => c.json(await enrollmentTokenAgents(c.var.ctx, c.req.param('id'))))
  .delete('/enrollment-tokens/:id', allow('admin'), async (c) => {
    const revoked = await revokeEnrollmentToken(c.var.ctx, c.req.param('id'))
    c.set('audit', { action: 'agents.enrollment_tokens.revoke', resourceType: 'enrollment_token', resourceId: revoked.id, summary: { name: revoked.name, prefix: revoked.prefix } })
    return c.json(revoked)
  })
  .get('/', allow('operator'), async (c) => {
    const query = parseQuery(PageQuery.extend(ListAgentsQuery.shape), c.req.query())
    return c.json(await listAgents(c.var.ctx, query, query))
  })
  // Registered before /:id, which would otherwise take "counts" for an id.
  .get('/counts', allow('operator'), async (c) => c.json(await agentCounts(c.var.ctx)))
  .get('/:id', allow('operator'), async (c) => c.json(await getAgent(c.var.ctx, c.req.param('id'))))
  .post('/:id/revoke', allow('admin'), async (c) => {
    const revoked = await revokeAgent(c.var.ctx, c.req.param('id'))
    c.set('audit', { resourceType: 'agent', resourceId: revoked.id, summary: { name: revoked.name, target_id: revoked.target_id } })
    return c.json(revoked)
  })
  .delete('/:id', allow('admin'), async (c) => {
    const removed = await removeAgent(c.var.ctx, c.req.param('id'))
    c.set('audit', { resourceType: 'agent', resourceId: removed.id, summary: { name: removed.name, target_id: removed.target_id } })
    return c.json(removed)
  })
