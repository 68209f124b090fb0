import { Hono } from 'hono'
import { allow } from '../auth/access.ts'
import type { AppEnv } from '../context.ts'
import { PageQuery, parseQuery } from '../http/pagination.ts'
import { readJson } from '../http/validate.ts'
import { createCredential, getCredential, getCredentialRow, listCredentials, ListCredentialsQuery, removeCredential, targetsUsingCredential, updateCredential } from './service.ts'
import { CreateCredentialInput, UpdateCredentialInput } from './types.ts'

/**
 * The credential vault: admins write, operators read metadata (they pick credentials for targets).
 * No response carries a secret; audit notes name the fields that changed, never their values.
 */
export const credentialsRoutes = new Hono<AppEnv>()
  .get('/', allow('operator'), async (c) => {
    const query = parseQuery(PageQuery.extend(ListCredentialsQuery.shape), c.req.query())
    return c.json(await listCredentials(c.var.ctx, query, query))
  })
  .post('/', allow('admin'), async (c) => {
    const input = await readJson(c, CreateCredentialInput)
    const created = await createCredential(c.var.ctx, c.get('principal'), input)
    c.set('audit', { resourceType: 'credential', resourceId: created.id, summary: { name: created.name, type: created.type } })
    return c.json(created, 201)
  })
  .get('/:id', allow('operator'), async (c) => c.json(await getCredential(c.var.ctx, c.req.param('id'))))
  /** Targets whose connection (or a jump host of it) logs in with this credential. */
  .get('/:id/targets', allow('operator'), async (c) => {
    const row = await getCredentialRow(c.var.ctx.db, c.req.param('id'))
    return c.json({ items: await targetsUsingCredential(c.var.ctx.db, row.id), next: null })
  })
  .put('/:id', allow('admin'), async (c) => {
    const input = await readJson(c, UpdateCredentialInput)
    const { credential, fields } = await updateCredential(c.var.ctx, c.get('principal'), c.req.param('id'), input)
    c.set('audit', {
      resourceType: 'credential',
      resourceId: credential.id,
      summary: { name: credential.name, type: credential.type, fields: [...(input.name !== undefined ? ['name'] : []), ...(input.description !== undefined ? ['description'] : []), ...fields] },
    })
    return c.json(credential)
  })
  .delete('/:id', allow('admin'), async (c) => {
    const removed = await removeCredential(c.var.ctx, c.req.param('id'))
    c.set('audit', { resourceType: 'credential', resourceId: removed.id, summary: { name: removed.name, type: removed.type } })
    return c.json(removed)
  })
