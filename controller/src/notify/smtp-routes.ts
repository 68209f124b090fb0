import { Hono } from 'hono'
import { z } from 'zod'
import { allow } from '../auth/access.ts'
import type { AppContext, AppEnv } from '../context.ts'
import { readJson } from '../http/validate.ts'
import { renderEmail, sendEmail } from './channels/email.ts'
import { testMessage } from './channels-service.ts'
import { getSmtpSettings, loadSmtpTransport, updateSmtpSettings } from './smtp-settings.ts'
import { AppError } from '../errors.ts'

const TestInput = z.object({ to: z.email('an email address') }).strict()

/** Sends a test email with the stored settings; the answer is the SMTP server's (or the connection's) own. */
async function sendTestEmail(ctx: AppContext, to: string, link: string, signal: AbortSignal) {
  const smtp = await loadSmtpTransport(ctx)
  if (!smtp) throw new AppError('PRECONDITION_FAILED', 'SMTP is not configured yet: POST /api/v1/notification/smtp/settings first')
  const message = testMessage({ id: 'smtp-test', name: 'SMTP settings', type: 'email' }, ctx.clock(), link)
  const r = await sendEmail(smtp, renderEmail({ to: [to] }, { ...message, subject: 'OpsConductor SMTP test', data: { test: true } }), AbortSignal.any([signal, AbortSignal.timeout(90_000)]))
  ctx.log.info({ ok: r.ok, durationMs: r.durationMs }, 'notify.smtp_test')
  return { ok: r.ok, response: r.response ?? null, error: r.error ?? null, duration_ms: r.durationMs, permanent: r.permanent === true }
}

/** `/notification/smtp`: the SMTP server email channels send through (admin only; the password is write-only). */
export const smtpRoutes = new Hono<AppEnv>()
  .get('/settings', allow('admin'), async (c) => c.json(await getSmtpSettings(c.var.ctx)))
  .post('/settings', allow('admin'), async (c) => {
    const body = await readJson(c, z.unknown())
    const { settings, fields } = await updateSmtpSettings(c.var.ctx, body, c.get('principal')!.username)
    c.set('audit', { action: 'notification.smtp_settings_update', resourceType: 'setting', resourceId: 'smtp', summary: { fields, host: settings.host, port: settings.port, security: settings.security } })
    return c.json(settings)
  })
  .post('/test', allow('admin'), async (c) => {
    const { to } = await readJson(c, TestInput)
    const result = await sendTestEmail(c.var.ctx, to, `${new URL(c.req.url).origin}/`, c.req.raw.signal)
    c.set('audit', { action: 'notification.smtp_test', resourceType: 'setting', resourceId: 'smtp', summary: { to, ok: result.ok } })
    return c.json(result)
  })
