import { Hono } from 'hono'
import { z } from 'zod'
import { allow } from '../auth/access.ts'
import type { AppEnv } from '../context.ts'
import { parseQuery } from '../http/pagination.ts'
import { readJson } from '../http/validate.ts'
import { createApiToken, CreateApiTokenInput, listApiTokens, revokeApiToken } from './service.ts'

/** Tokens for automation. Anyone signed in manages their own; admins may see and revoke anyone's. */
export const apiTokensRoutes = new Hono<AppEnv>()
  .get('/', allow('viewer'), async (c) => {
    const { user_id } = parseQuery(z.object({ user_id: z.uuid().optional() }), c.req.query())
    return c.json({ items: await listApiTokens(c.var.ctx, c.get('principal')!, user_id), next: null })
  })
  .post('/', allow('viewer'), async (c) => {
    const created = await createApiToken(c.var.ctx, c.get('principal')!, await readJson(c, CreateApiTokenInput))
    c.set('audit', { action: 'api_tokens.create', resourceType: 'api_token', resourceId: created.id, summary: { name: created.name, role: created.role, expires_at: created.expires_at } })
    return c.json(created, 201)
  })
  .delete('/:id', allow('viewer'), async (c) => {
    const revoked = await revokeApiToken(c.var.ctx, c.get('principal')!, c.req.param('id'))
    c.set('audit', { action: 'api_tokens.revoke', resourceType: 'api_token', resourceId: revoked.id, summary: { name: revoked.name } })
    return c.json(revoked)
  })
