import { Hono } from 'hono'
import { z } from 'zod'
import { allow } from '../auth/access.ts'
import { roleAtLeast } from '../auth/roles.ts'
import { AppError } from '../errors.ts'
import { readJson } from '../http/validate.ts'
import type { AppEnv } from '../context.ts'
import { PageQuery, parseQuery } from '../http/pagination.ts'
import { NOTIFICATION_STATUSES } from './notify.sql.ts'
import { getPreferences, savePreferences } from './preferences.ts'
import { discardNotification, getNotification, getOutboxStatus, listNotifications, retryNotification, type NotificationDto } from './outbox.ts'

const Time = z.iso.datetime({ offset: true }).transform((s) => new Date(s))
const Filters = z.object({
  status: z.enum(NOTIFICATION_STATUSES).optional(),
  channel_id: z.uuid().optional(),
  event: z.string().min(1).max(200).optional(),
  run_id: z.uuid().optional(),
  since: Time.optional(),
})
const ListQuery = PageQuery.extend(Filters.shape)
const DeadLetterQuery = PageQuery.extend(Filters.omit({ status: true }).shape)

/** A user's own preferences, or anyone's for an admin. */
function ownOrAdmin(c: { get(key: 'principal'): AppEnv['Variables']['principal'] }, userId: string): void {
  const p = c.get('principal')!
  if (p.userId.toLowerCase() !== userId.toLowerCase() && !roleAtLeast(p.role, 'admin')) throw new AppError('FORBIDDEN', 'only your own notification preferences, unless you are an admin')
}

const auditSummary = (n: NotificationDto) => ({ event: n.event, channel_id: n.channel_id, status: n.status, attempts: n.attempt_count })

/**
 * Delivery history, dead letters and the outbox's status. Mounted at the API root because it
 * serves both `/notifications…` and `/notification/status`.
 */
export const notificationsRoutes = new Hono<AppEnv>()
  .get('/notifications', allow('viewer'), async (c) => {
    const query = parseQuery(ListQuery, c.req.query())
    return c.json(await listNotifications(c.var.ctx, query, query))
  })
  // Registered before /:id, which would otherwise take "dead-letters" for an id.
  .get('/notifications/dead-letters', allow('viewer'), async (c) => {
    const query = parseQuery(DeadLetterQuery, c.req.query())
    return c.json(await listNotifications(c.var.ctx, { ...query, status: 'dead' }, query))
  })
  .get('/notifications/:id', allow('viewer'), async (c) => c.json(await getNotification(c.var.ctx, c.req.param('id'))))
  .post('/notifications/:id/retry', allow('operator'), async (c) => {
    const n = await retryNotification(c.var.ctx, c.req.param('id'))
    c.set('audit', { action: 'notifications.retry', resourceType: 'notification', resourceId: n.id, summary: auditSummary(n) })
    return c.json(n)
  })
  .post('/notifications/:id/discard', allow('operator'), async (c) => {
    const n = await discardNotification(c.var.ctx, c.req.param('id'))
    c.set('audit', { action: 'notifications.discard', resourceType: 'notification', resourceId: n.id, summary: auditSummary(n) })
    return c.json(n)
  })
  .get('/notification/status', allow('viewer'), async (c) => c.json(await getOutboxStatus(c.var.ctx)))
  .get('/notification/preferences/:user_id', allow('viewer'), async (c) => {
    ownOrAdmin(c, c.req.param('user_id'))
    return c.json(await getPreferences(c.var.ctx, c.req.param('user_id')))
  })
  .post('/notification/preferences/:user_id', allow('viewer'), async (c) => {
    const userId = c.req.param('user_id')
    ownOrAdmin(c, userId)
    const saved = await savePreferences(c.var.ctx, userId, await readJson(c, z.unknown()), c.get('principal')!.username)
    const { updated_at: _at, updated_by: _by, ...summary } = saved
    c.set('audit', { action: 'notification.preferences_update', resourceType: 'user', resourceId: userId, summary })
    return c.json(saved)
  })
