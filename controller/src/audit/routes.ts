import { Hono } from 'hono'
import { z } from 'zod'
import { allow } from '../auth/access.ts'
import type { AppEnv } from '../context.ts'
import { PageQuery, parseQuery, type Page } from '../http/pagination.ts'
import { AUDIT_OUTCOMES } from './audit.sql.ts'
import type { ChainBreak } from './chain.ts'
import { getAuditEvent, listAudit, verifyAuditChain, type AuditEvent } from './service.ts'

export type { AuditEvent }
export type AuditListResponse = Page<AuditEvent>

/** GET /audit/verify: the whole hash chain walked now, as `opsconductor audit verify` does. */
export interface AuditVerifyResponse {
  ok: boolean
  /** Rows that checked out (before the break, when there is one). */
  entries_checked: number
  /** The newest row's hash when the chain is intact (record it elsewhere to detect a truncated tail later). */
  head: string | null
  /** The first row that does not check out, with the row itself so a reader can see what it claims. */
  broken: { id: number; reason: ChainBreak; message: string; entry: AuditEvent | null } | null
  checked_at: string
}

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
    outcome: z.enum(AUDIT_OUTCOMES).optional(),
  })
  .refine((q) => !q.from || !q.to || q.from < q.to, { path: ['to'], message: 'must be after from' })
export type AuditQuery = z.infer<typeof AuditQuery>

export const auditRoutes = new Hono<AppEnv>()
  .get('/', allow('admin'), async (c) => {
    const { limit, cursor, resource_type, resource_id, ...rest } = parseQuery(AuditQuery, c.req.query())
    const filters = { ...rest, resourceType: resource_type, resourceId: resource_id }
    const body: AuditListResponse = await listAudit(c.var.ctx.db, filters, { limit, cursor })
    return c.json(body)
  })
  .get('/verify', allow('admin'), async (c) => {
    const { db, clock } = c.var.ctx
    const result = await verifyAuditChain(db)
    const body: AuditVerifyResponse = result.ok
      ? { ok: true, entries_checked: result.rows, head: result.head, broken: null, checked_at: clock().toISOString() }
      : {
          ok: false,
          entries_checked: result.rows,
          head: null,
          broken: { ...result.brokenAt, entry: await getAuditEvent(db, result.brokenAt.id) },
          checked_at: clock().toISOString(),
        }
    return c.json(body)
  })
