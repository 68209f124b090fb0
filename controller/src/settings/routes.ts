import { Hono } from 'hono'
import { allow } from '../auth/access.ts'
import type { AppEnv } from '../context.ts'
import { readJson } from '../http/validate.ts'
import { getSecuritySettings, SecuritySettings, updateSecuritySettings } from './service.ts'

export const settingsRoutes = new Hono<AppEnv>()
  .get('/security', allow('admin'), async (c) => c.json(await getSecuritySettings(c.var.ctx.db, 0)))
  .put('/security', allow('admin'), async (c) => {
    const patch = await readJson(c, SecuritySettings.partial())
    const updated = await updateSecuritySettings(c.var.ctx.db, patch, c.get('principal')!.username)
    c.set('audit', { action: 'settings.security_update', resourceType: 'setting', resourceId: 'security', summary: patch })
    return c.json(updated)
  })
