import type { Context, MiddlewareHandler } from 'hono'
import { matchedRoutes } from 'hono/route'
import { actorOf } from '../auth/principal.ts'
import type { AppEnv } from '../context.ts'
import { AppError } from '../errors.ts'
import type { AuditOutcome } from './audit.sql.ts'
import { appendAudit, type AuditEntry } from './service.ts'

const READ_ONLY = new Set(['GET', 'HEAD', 'OPTIONS'])
const VERB: Partial<Record<string, string>> = { POST: 'create', PUT: 'update', PATCH: 'update', DELETE: 'delete' }

/**
 * One audit row per mutating API request, written after the handler (and after onError, which
 * Hono runs inside next()), so failures and denials are recorded too. Handlers describe what they
 * changed with `c.set('audit', { … })`, or `skip: true` when they write their own security event.
 */
export function auditMutations(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next()
    if (READ_ONLY.has(c.req.method) || !c.req.path.startsWith('/api/')) return
    const note = c.get('audit')
    if (note?.skip) return
    const endpoint = endpointOf(c)
    // No route matched: nothing could have changed, and recording it would let anyone flood the chain.
    if (!endpoint) return
    const derived = deriveAction(c.req.method, endpoint.path)
    const status = c.res.status
    const summary: Record<string, unknown> = { ...note?.summary, status }
    if (c.error) summary.error = c.error instanceof AppError ? c.error.code : 'INTERNAL'
    const entry: AuditEntry = {
      actor: actorOf(c.get('principal')),
      action: note?.action ?? derived.action,
      resourceType: note?.resourceType ?? derived.resourceType,
      resourceId: note?.resourceId !== undefined ? note.resourceId : (endpoint.params.id ?? null),
      clientAddress: c.get('clientAddress') ?? null,
      requestId: c.get('requestId') ?? null,
      outcome: outcomeOf(status),
      summary,
    }
    const { ctx } = c.var
    try {
      await appendAudit(ctx.db, entry, ctx.clock())
    } catch (err) {
      // The change has already been made (and usually committed); a 500 now would misreport it.
      const log = c.get('log') ?? ctx.log
      log.error({ err, requestId: entry.requestId, action: entry.action, status }, 'audit.append_failed')
    }
  }
}

export function outcomeOf(status: number): AuditOutcome {
  if (status === 401 || status === 403) return 'denied'
  return status < 400 ? 'success' : 'failure'
}

/** The route that handles the request (not a middleware), with its parameters. */
function endpointOf(c: Context<AppEnv>): { path: string; params: Record<string, string> } | null {
  const routes = matchedRoutes(c)
  const index = routes.findLastIndex((r) => r.method !== 'ALL')
  if (index < 0) return null
  // Params belong to a matched route; read the endpoint's even when a middleware answered (e.g. 401).
  const current = c.req.routeIndex
  c.req.routeIndex = index
  const params = c.req.param() as Record<string, string>
  c.req.routeIndex = current
  return { path: routes[index]!.path, params }
}

/**
 * `POST /api/v1/users` → users.create, `PUT …/users/:id` → users.update, `DELETE …/users/:id` →
 * users.delete; a POST to a named operation is that operation: `POST …/jobs/:id/run` → jobs.run,
 * `POST …/auth/revoke-all` → auth.revoke_all. The resource type is the name before `:id`.
 */
export function deriveAction(method: string, routePath: string): { action: string; resourceType: string | null } {
  const segments = routePath.replace(/^\/api(\/v\d+)?(?=\/|$)/, '').split('/').filter(Boolean)
  const isLiteral = (s: string) => !s.startsWith(':') && !s.includes('*')
  const literals = segments.filter(isLiteral).map((s) => s.replaceAll('-', '_'))
  const idAt = segments.indexOf(':id')
  const before = idAt > 0 ? segments[idAt - 1]! : undefined
  const resourceType = before && isLiteral(before) ? before.replaceAll('-', '_') : (literals[0] ?? null)
  const last = segments.at(-1)
  const namedOperation = method === 'POST' && last !== undefined && isLiteral(last) && literals.length > 1
  const action = namedOperation ? literals.join('.') : [...literals, VERB[method] ?? method.toLowerCase()].join('.')
  return { action: literals.length === 0 ? `api.${VERB[method] ?? method.toLowerCase()}` : action, resourceType }
}
