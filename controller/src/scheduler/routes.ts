import { Hono } from 'hono'
import { allow } from '../auth/access.ts'
import type { AppEnv } from '../context.ts'
import { PageQuery, parseQuery } from '../http/pagination.ts'
import { readJson } from '../http/validate.ts'
import { AdhocPreviewQuery, CreateScheduleInput, ListFiresQuery, ListSchedulesQuery, PreviewQuery, UpdateScheduleInput } from './schedule-input.ts'
import { createSchedule, getSchedule, listFires, listSchedules, previewExpression, previewSchedule, removeSchedule, updateSchedule } from './service.ts'

const auditSummary = (s: { name: string; job_id: string; cron: string; timezone: string; enabled: boolean }) => ({ name: s.name, job_id: s.job_id, cron: s.cron, timezone: s.timezone, enabled: s.enabled })

export const schedulesRoutes = new Hono<AppEnv>()
  .get('/', allow('viewer'), async (c) => {
    const query = parseQuery(PageQuery.extend(ListSchedulesQuery.shape), c.req.query())
    return c.json(await listSchedules(c.var.ctx, query, query))
  })
  .post('/', allow('operator'), async (c) => {
    const created = await createSchedule(c.var.ctx, c.get('principal'), await readJson(c, CreateScheduleInput))
    c.set('audit', { resourceType: 'schedule', resourceId: created.id, summary: auditSummary(created) })
    return c.json(created, 201)
  })
  // Registered before /:id, which would otherwise take "preview" for an id.
  .get('/preview', allow('viewer'), (c) => {
    const q = parseQuery(AdhocPreviewQuery, c.req.query())
    const zoneParam = q.tz === undefined && q.timezone !== undefined ? 'timezone' : 'tz'
    return c.json(previewExpression(c.var.ctx, { cron: q.cron, tz: q.tz ?? q.timezone ?? 'UTC', zoneParam, count: q.count, from: q.from }))
  })
  .get('/:id', allow('viewer'), async (c) => c.json(await getSchedule(c.var.ctx, c.req.param('id'))))
  .put('/:id', allow('operator'), async (c) => {
    const { before, after } = await updateSchedule(c.var.ctx, c.get('principal'), c.req.param('id'), await readJson(c, UpdateScheduleInput))
    c.set('audit', { resourceType: 'schedule', resourceId: after.id, summary: { ...auditSummary(after), previous: auditSummary(before) } })
    return c.json(after)
  })
  .delete('/:id', allow('operator'), async (c) => {
    const removed = await removeSchedule(c.var.ctx, c.req.param('id'))
    c.set('audit', { resourceType: 'schedule', resourceId: removed.id, summary: { name: removed.name } })
    return c.json(removed)
  })
  .get('/:id/preview', allow('viewer'), async (c) => {
    const q = parseQuery(PreviewQuery, c.req.query())
    return c.json(await previewSchedule(c.var.ctx, c.req.param('id'), q))
  })
  .get('/:id/fires', allow('viewer'), async (c) => {
    const query = parseQuery(PageQuery.extend(ListFiresQuery.shape), c.req.query())
    return c.json(await listFires(c.var.ctx, c.req.param('id'), query, query))
  })
