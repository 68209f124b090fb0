import type { Context } from 'hono'
import { actorOf, type Actor } from '../auth/principal.ts'
import type { AppEnv } from '../context.ts'
import { appendAuditNotifying } from '../notify/system-events.ts'
import type { AuditEntry } from './service.ts'

/**
 * Records a security event (login, token reuse, lockout…) with the request's address and id, and
 * tells the audit middleware not to write a second, generic row for this request.
 */
export async function recordSecurityEvent(
  c: Context<AppEnv>,
  event: Omit<AuditEntry, 'actor' | 'clientAddress' | 'requestId'> & { actor?: Actor },
): Promise<void> {
  const { ctx } = c.var
  c.set('audit', { ...c.get('audit'), skip: true })
  const entry: AuditEntry = {
    ...event,
    actor: event.actor ?? actorOf(c.get('principal')),
    clientAddress: c.get('clientAddress') ?? null,
    requestId: c.get('requestId') ?? null,
  }
  const level = event.outcome === 'success' ? 'info' : 'warn'
  ctx.log[level]({ action: event.action, outcome: event.outcome, actor: entry.actor, clientAddress: entry.clientAddress, requestId: entry.requestId }, `security.${event.action}`)
  // A lockout or a reused refresh token also raises its security.* notification, in the same transaction.
  await appendAuditNotifying(ctx, entry)
}
