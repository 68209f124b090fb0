import { Hono } from 'hono'
import { z } from 'zod'
import { allow } from '../auth/access.ts'
import type { AppEnv } from '../context.ts'
import { readJson } from '../http/validate.ts'
import { createRule, getRule, listRules, previewRule, PreviewInput, removeRule, updateRule, type RuleDto } from './rules-service.ts'

const auditSummary = (r: RuleDto) => ({ name: r.name, enabled: r.enabled, events: r.events, channel_ids: r.channel_ids, user_ids: r.user_ids })
/** The body is parsed by the service: a PUT is merged into the stored rule first. */
const body = (c: Parameters<typeof readJson>[0]) => readJson(c, z.unknown())

export const notificationRulesRoutes = new Hono<AppEnv>()
  .get('/', allow('viewer'), async (c) => c.json(await listRules(c.var.ctx)))
  .post('/', allow('operator'), async (c) => {
    const created = await createRule(c.var.ctx, c.get('principal'), await body(c))
    c.set('audit', { resourceType: 'notification_rule', resourceId: created.id, summary: auditSummary(created) })
    return c.json(created, 201)
  })
  // Before /:id, which would otherwise take "preview" for an id.
  .post('/preview', allow('viewer'), async (c) => c.json(await previewRule(c.var.ctx, await readJson(c, PreviewInput))))
  .get('/:id', allow('viewer'), async (c) => c.json(await getRule(c.var.ctx, c.req.param('id'))))
  .put('/:id', allow('operator'), async (c) => {
    const { before, after } = await updateRule(c.var.ctx, c.get('principal'), c.req.param('id'), await body(c))
    c.set('audit', { resourceType: 'notification_rule', resourceId: after.id, summary: { ...auditSummary(after), previous: auditSummary(before) } })
    return c.json(after)
  })
  .delete('/:id', allow('operator'), async (c) => {
    const removed = await removeRule(c.var.ctx, c.req.param('id'))
    c.set('audit', { resourceType: 'notification_rule', resourceId: removed.id, summary: { name: removed.name } })
    return c.json(removed)
  })
