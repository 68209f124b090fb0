import { Hono } from 'hono'
import { z } from 'zod'
import { allow } from '../auth/access.ts'
import type { AppEnv } from '../context.ts'
import { PageQuery, parseQuery } from '../http/pagination.ts'
import { readJson } from '../http/validate.ts'
import { channelDirectory, createChannel, getChannel, listChannels, ListChannelsQuery, removeChannel, testChannel, updateChannel } from './channels-service.ts'
import { smtpRoutes } from './smtp-routes.ts'

/** The body is parsed by the service: a PUT is merged into the stored channel before the per-type rules apply. */
const body = (c: Parameters<typeof readJson>[0]) => readJson(c, z.unknown())

/**
 * `/notification-channels`: admin only (channels carry webhook tokens and decide who hears about
 * what), except `/directory` (ids, names and types, for anyone picking channels). Secrets are
 * write-only; audit notes name the fields that changed, never values.
 */
export const notificationChannelsRoutes = new Hono<AppEnv>()
  .get('/', allow('admin'), async (c) => {
    const query = parseQuery(PageQuery.extend(ListChannelsQuery.shape), c.req.query())
    return c.json(await listChannels(c.var.ctx, query, query))
  })
  .post('/', allow('admin'), async (c) => {
    const { channel, fields } = await createChannel(c.var.ctx, c.get('principal'), await body(c))
    c.set('audit', { resourceType: 'notification_channel', resourceId: channel.id, summary: { name: channel.name, type: channel.type, fields } })
    return c.json(channel, 201)
  })
  // Names and types only, for picking channels (rules, preferences); before /:id, which would take "directory" for an id.
  .get('/directory', allow('viewer'), async (c) => c.json(await channelDirectory(c.var.ctx)))
  .get('/:id', allow('admin'), async (c) => c.json(await getChannel(c.var.ctx, c.req.param('id'))))
  .put('/:id', allow('admin'), async (c) => {
    const { channel, fields } = await updateChannel(c.var.ctx, c.get('principal'), c.req.param('id'), await body(c))
    c.set('audit', { resourceType: 'notification_channel', resourceId: channel.id, summary: { name: channel.name, type: channel.type, fields } })
    return c.json(channel)
  })
  .delete('/:id', allow('admin'), async (c) => {
    const removed = await removeChannel(c.var.ctx, c.get('principal'), c.req.param('id'))
    c.set('audit', { resourceType: 'notification_channel', resourceId: removed.id, summary: { name: removed.name, type: removed.type } })
    return c.json(removed)
  })
  .post('/:id/test', allow('admin'), async (c) => {
    const { channel, result } = await testChannel(c.var.ctx, c.req.param('id'), { link: `${new URL(c.req.url).origin}/`, signal: c.req.raw.signal })
    c.set('audit', { resourceType: 'notification_channel', resourceId: channel.id, summary: { name: channel.name, type: channel.type, ok: result.ok, http_status: result.http_status } })
    return c.json(result)
  })

/** Mounted at the API root: the channels and the SMTP settings they share, in one line of app.ts. */
export const notificationChannelsApi = new Hono<AppEnv>().route('/notification-channels', notificationChannelsRoutes).route('/notification/smtp', smtpRoutes)
