import { Hono } from 'hono'
import { z } from 'zod'
import { allow } from '../auth/access.ts'
import type { AppEnv } from '../context.ts'
import { parseQuery } from '../http/pagination.ts'
import { readJson } from '../http/validate.ts'
import { createWindow, getWindow, listActiveWindows, listOpenings, listWindows, removeWindow, updateWindow } from './maintenance-service.ts'

const Instant = z.iso.datetime({ offset: true, message: 'an ISO-8601 date-time with a zone' })
const ActiveQuery = z.object({ at: Instant.optional() })
const CalendarQuery = z.object({ from: Instant, to: Instant })

const auditSummary = (w: { name: string; kind: string; action: string; enabled: boolean; applies_to: unknown }) => ({ name: w.name, kind: w.kind, action: w.action, enabled: w.enabled, applies_to: w.applies_to })

/** The body is parsed by the service: a PUT is merged into the stored window before the rules apply. */
const body = (c: Parameters<typeof readJson>[0]) => readJson(c, z.unknown())

export const maintenanceWindowsRoutes = new Hono<AppEnv>()
  .get('/', allow('viewer'), async (c) => c.json(await listWindows(c.var.ctx)))
  .post('/', allow('operator'), async (c) => {
    const created = await createWindow(c.var.ctx, c.get('principal'), await body(c))
    c.set('audit', { resourceType: 'maintenance_window', resourceId: created.id, summary: auditSummary(created) })
    return c.json(created, 201)
  })
  // Registered before /:id, which would otherwise take "active" for an id.
  .get('/active', allow('viewer'), async (c) => {
    const q = parseQuery(ActiveQuery, c.req.query())
    return c.json(await listActiveWindows(c.var.ctx, q.at ? new Date(q.at) : c.var.ctx.clock()))
  })
  // The openings of every window in a range (at most 62 days), for a calendar.
  .get('/calendar', allow('viewer'), async (c) => {
    const q = parseQuery(CalendarQuery, c.req.query())
    return c.json(await listOpenings(c.var.ctx, new Date(q.from), new Date(q.to)))
  })
  .get('/:id', allow('viewer'), async (c) => c.json(await getWindow(c.var.ctx, c.req.param('id'))))
  .put('/:id', allow('operator'), async (c) => {
    const { before, after } = await updateWindow(c.var.ctx, c.get('principal'), c.req.param('id'), await body(c))
    c.set('audit', { resourceType: 'maintenance_window', resourceId: after.id, summary: { ...auditSummary(after), previous: auditSummary(before) } })
    return c.json(after)
  })
  .delete('/:id', allow('operator'), async (c) => {
    const removed = await removeWindow(c.var.ctx, c.req.param('id'))
    c.set('audit', { resourceType: 'maintenance_window', resourceId: removed.id, summary: { name: removed.name } })
    return c.json(removed)
  })
