import { Hono } from 'hono'
import { z } from 'zod'
import { allow } from '../auth/access.ts'
import type { AppEnv } from '../context.ts'
import { PageQuery, parseQuery, type Page } from '../http/pagination.ts'
import { listAudit, type AuditEvent } from './service.ts'

export type { AuditEvent }
export type AuditListResponse = Page<AuditEvent>

const Time = z.iso.datetime({ offset: true }).transform((s) => new Date(s))

// Strict: a misspelt filter (`?acton=`) is a 400, not a silently unfiltered list.
export const AuditQuery = z
  .strictObject({
    ...PageQuery.shape,
    actor: z.string().min(1).max(200).optional(),
    action: z.string().max(200).regex(/^[^*]+\*?$/, 'an action name, or a prefix ending in * (auth.*)').optional(),
    resource_type: z.string().min(1).max(200).optional(),
    resource_id: z.string().min(1).max(500).optional(),
    from: Time.optional(),
    to: Time.optional(),
  })
  .refine((q) => !q.from || !q.to || q.from < q.to, { path: ['to'], message: 'must be after from' })
export type AuditQuery = z.infer<typeof AuditQuery>

export const auditRoutes = new Hono<AppEnv>().get('/', allow('admin'), async (c) => {
  const { limit, cursor, resource_type, resource_id, ...rest } = parseQuery(AuditQuery, c.req.query())
  const filters = { ...rest, resourceType: resource_type, resourceId: resource_id }
  const body: AuditListResponse = await listAudit(c.var.ctx.db, filters, { limit, cursor })
  return c.json(body)
})
