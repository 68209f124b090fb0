import { Hono, type Context } from 'hono'
import { z } from 'zod'
import { allow } from '../auth/access.ts'
import type { AppEnv } from '../context.ts'
import { AppError } from '../errors.ts'
import { PageQuery, parseQuery, type Page } from '../http/pagination.ts'
import { readJson, readOptionalJson } from '../http/validate.ts'
import { previewSelector } from '../selectors/compile.ts'
import { groupsOfTargets, type GroupRef } from '../target-groups/service.ts'
import { bulkChange, BulkInput } from './bulk.ts'
import { ConnectionTestInput, testConnection } from './connection-test.ts'
import { decideStoredHostKey, listHostKeys } from './host-keys.ts'
import { exportTargets, importTargets, parseImportBody } from './import-export.ts'
import { TargetInput, TargetPatch } from './schemas.ts'
import { createTarget, getTargetRow, listTargets, ListTargetsQuery, removeTarget, targetDto, updateTarget, type TargetDto } from './service.ts'

/** `with_groups=true`: each listed target also names the groups it is in (for tables that show them). */
const ListQuery = PageQuery.extend(ListTargetsQuery.shape).extend({ with_groups: z.enum(['true', 'false']).default('false') })
export type TargetListItem = TargetDto & { groups?: GroupRef[] }

const ResolveQuery = z.object({
  selector: z.string().min(1).max(4096),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  include_disabled: z.enum(['true', 'false']).default('false'),
})

export const targetsRoutes = new Hono<AppEnv>()
  .get('/', allow('viewer'), async (c) => {
    const query = parseQuery(ListQuery, { ...c.req.query(), ...(c.req.queries('tag') ? { tag: c.req.queries('tag') } : {}) } as Record<string, string>)
    const page: Page<TargetListItem> = await listTargets(c.var.ctx, query, query)
    if (query.with_groups === 'true') {
      const groups = await groupsOfTargets(c.var.ctx.db, page.items.map((t) => t.id))
      page.items = page.items.map((t) => ({ ...t, groups: groups.get(t.id) ?? [] }))
    }
    return c.json(page)
  })
  .post('/', allow('operator'), async (c) => {
    const created = await createTarget(c.var.ctx, await readJson(c, TargetInput))
    c.set('audit', { resourceType: 'target', resourceId: created.id, summary: { name: created.name, address: created.address, connection: created.connection.type } })
    return c.json(created, 201)
  })
  /** Preview a selector: how many targets it picks now, and the first of them. */
  .get('/resolve', allow('viewer'), async (c) => {
    const { selector, limit, include_disabled } = parseQuery(ResolveQuery, c.req.query())
    const resolved = await previewSelector(c.var.ctx.db, selector, { limit, includeDisabled: include_disabled === 'true' })
    return c.json({ selector, count: resolved.count, targets: resolved.targets })
  })
  .get('/export', allow('viewer'), async (c) => {
    const { format } = parseQuery(z.object({ format: z.enum(['json', 'csv']).default('json') }), c.req.query())
    const body = await exportTargets(c.var.ctx, format)
    c.header('content-disposition', `attachment; filename="targets.${format}"`)
    return format === 'csv' ? c.body(body, 200, { 'content-type': 'text/csv; charset=utf-8' }) : c.body(body, 200, { 'content-type': 'application/json' })
  })
  .post('/import', allow('operator'), async (c) => {
    const { dry_run } = parseQuery(z.object({ dry_run: z.enum(['true', 'false']).default('false') }), c.req.query())
    const text = await c.req.text()
    if (text.length > 32 * 1024 * 1024) throw new AppError('PAYLOAD_TOO_LARGE', 'import files are limited to 32 MiB')
    const report = await importTargets(c.var.ctx, parseImportBody(c.req.header('content-type') ?? '', text), dry_run === 'true')
    c.set('audit', report.dry_run ? { skip: true } : { action: 'targets.import', resourceType: 'target', resourceId: null, summary: { created: report.created, updated: report.updated, rejected: report.rejected } })
    return c.json(report)
  })
  .post('/bulk', allow('operator'), async (c) => {
    const input = await readJson(c, BulkInput)
    const result = await bulkChange(c.var.ctx, input)
    c.set('audit', { action: `targets.bulk_${input.action}`, resourceType: 'target', resourceId: null, summary: { targets: input.target_ids.length, changed: result.changed } })
    return c.json(result)
  })
  .get('/:id', allow('viewer'), async (c) => c.json(targetDto(await getTargetRow(c.var.ctx.db, c.req.param('id')), c.var.ctx.clock())))
  .put('/:id', allow('operator'), async (c) => {
    const patch = await readJson(c, TargetPatch)
    const { before, after } = await updateTarget(c.var.ctx, c.req.param('id'), patch)
    c.set('audit', {
      resourceType: 'target',
      summary: { name: after.name, fields: Object.keys(patch), ...(before.connection.type !== after.connection.type ? { connection: { from: before.connection.type, to: after.connection.type } } : {}) },
    })
    return c.json(after)
  })
  .delete('/:id', allow('operator'), async (c) => {
    const removed = await removeTarget(c.var.ctx, c.req.param('id'))
    c.set('audit', { resourceType: 'target', summary: { name: removed.name } })
    return c.json(removed)
  })
  .get('/:id/host-keys', allow('viewer'), async (c) => c.json({ items: await listHostKeys(c.var.ctx, c.req.param('id')), next: null }))
  .post('/:id/host-keys/:keyId/approve', allow('operator'), async (c) => {
    const key = await decideStoredHostKey(c.var.ctx, c.req.param('id'), c.req.param('keyId'), 'trusted', c.get('principal')!.username)
    c.set('audit', { action: 'targets.host_key_approve', resourceType: 'target', summary: { fingerprint: key.fingerprint, key_type: key.key_type } })
    return c.json(key)
  })
  .post('/:id/host-keys/:keyId/revoke', allow('operator'), async (c) => {
    const key = await decideStoredHostKey(c.var.ctx, c.req.param('id'), c.req.param('keyId'), 'revoked', c.get('principal')!.username)
    c.set('audit', { action: 'targets.host_key_revoke', resourceType: 'target', summary: { fingerprint: key.fingerprint, key_type: key.key_type } })
    return c.json(key)
  })
  /** Connect as a step would, collect facts into the target; 200 with `ok` and a failure class either way. */
  .post('/:id/test-ssh', allow('operator'), async (c) => connectionTestRoute(c, 'ssh'))
  .post('/:id/test-winrm', allow('operator'), async (c) => connectionTestRoute(c, 'winrm'))

async function connectionTestRoute(c: Context<AppEnv>, transport: 'ssh' | 'winrm') {
  const result = await testConnection(c.var.ctx, c.req.param('id')!, transport, await readOptionalJson(c, ConnectionTestInput))
  c.set('audit', { action: `targets.test_${transport}`, resourceType: 'target', summary: result.ok ? { ok: true, latency_ms: result.latency_ms } : { ok: false, failure: result.failure } })
  return c.json(result)
}
