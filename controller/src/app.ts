import { Hono } from 'hono'
import { requestId } from 'hono/request-id'
import { secureHeaders } from 'hono/secure-headers'
import { agentsRoutes } from './agents/routes.ts'
import { apiTokensRoutes } from './api-tokens/routes.ts'
import { auditMutations } from './audit/middleware.ts'
import { auditRoutes } from './audit/routes.ts'
import { declaredRoutes } from './auth/access.ts'
import { authenticate } from './auth/middleware.ts'
import { authRoutes } from './auth/routes.ts'
import { credentialsRoutes } from './credentials/routes.ts'
import { dashboardRoutes } from './dashboard/routes.ts'
import { jobsRoutes } from './jobs/routes.ts'
import { notificationsRoutes } from './notify/routes.ts'
import { notificationRulesRoutes } from './notify/rules-routes.ts'
import { runsRoutes } from './runs/routes.ts'
import { schedulerRoutes } from './scheduler/status-routes.ts'
import { maintenanceWindowsRoutes } from './scheduler/maintenance-routes.ts'
import { notificationChannelsApi } from './notify/channels-routes.ts'
import { schedulesRoutes } from './scheduler/routes.ts'
import type { AppContext, AppEnv } from './context.ts'
import { settingsRoutes } from './settings/routes.ts'
import { targetGroupsRoutes } from './target-groups/routes.ts'
import { targetsRoutes } from './targets/routes.ts'
import { usersRoutes } from './users/routes.ts'
import { apiNotFound, onError } from './http/errors.ts'
import { rateLimit, rejectNulInUrl, requestBodyLimit } from './http/limits.ts'
import { staticUi } from './http/static-ui.ts'
import { systemRoutes, versionRoutes } from './system/routes.ts'

// Probes are polled every few seconds; logging each at info would drown the log.
const QUIET_PATHS = new Set(['/healthz', '/readyz', '/metrics'])

export interface AppOptions {
  uiDir?: string
}

/** Every /api/v1 route, chained so its type carries each route's input and output (the UI's typed client reads it). */
export const apiRoutes = new Hono<AppEnv>()
  .route('/', versionRoutes)
  .route('/auth', authRoutes)
  .route('/users', usersRoutes)
  .route('/api-tokens', apiTokensRoutes)
  .route('/settings', settingsRoutes)
  .route('/audit', auditRoutes)
  .route('/credentials', credentialsRoutes)
  .route('/targets', targetsRoutes)
  .route('/target-groups', targetGroupsRoutes)
  .route('/agents', agentsRoutes)
  .route('/jobs', jobsRoutes)
  .route('/runs', runsRoutes)
  .route('/dashboard', dashboardRoutes)
  .route('/scheduler', schedulerRoutes)
  .route('/schedules', schedulesRoutes)
  .route('/maintenance-windows', maintenanceWindowsRoutes)
  .route('/notification-rules', notificationRulesRoutes)
  .route('/', notificationsRoutes)
  .route('/', notificationChannelsApi)
export type ApiRoutes = typeof apiRoutes

/** The whole HTTP surface. Feature routers are mounted under /api/v1; everything else is probes and the UI. */
export function createApp(ctx: AppContext, opts: AppOptions = {}) {
  const api = new Hono<AppEnv>().route('/', apiRoutes)
  api.all('*', apiNotFound)

  const app = new Hono<AppEnv>()
  app.use(requestId({ headerName: 'x-request-id', limitLength: 64 }))
  app.use(async (c, next) => {
    c.set('ctx', ctx)
    c.set('log', ctx.log)
    const started = process.hrtime.bigint()
    await next()
    observe(c.var.ctx, c.req.method, routeLabel(c.req.routePath, c.res.status), c.res.status, started, c.var.requestId, c.req.path)
  })
  app.use(
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        styleSrc: ["'self'", "'unsafe-inline'"],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"],
      },
      strictTransportSecurity: 'max-age=31536000',
    }),
  )
  app.route('/', systemRoutes)
  // Bodies over the limit are refused before authentication reads anything; the rate limit keys by principal, so it follows it.
  app.use('/api/*', requestBodyLimit(ctx.config.OPSC_HTTP_MAX_BODY_BYTES))
  app.use('/api/*', rejectNulInUrl())
  app.use('/api/*', authenticate())
  app.use('/api/*', rateLimit({ rps: ctx.config.OPSC_HTTP_RATE_LIMIT_RPS, burst: ctx.config.OPSC_HTTP_RATE_LIMIT_BURST }))
  app.use('/api/*', auditMutations())
  app.route('/api/v1', api)
  app.all('/api/*', apiNotFound)
  app.route('/', staticUi(opts.uiDir ?? ctx.config.OPSC_UI_DIR))
  app.notFound(apiNotFound)
  app.onError(onError)
  // A route without an access declaration must not ship: refuse to build the app.
  declaredRoutes(app)
  return app
}

export type AppType = ReturnType<typeof createApp>

/** Route patterns, not raw paths, so metric label cardinality stays bounded. */
function routeLabel(routePath: string, status: number): string {
  if (status === 404) return 'unmatched'
  return routePath
}

function observe(ctx: AppContext, method: string, route: string, status: number, started: bigint, requestId: string, path: string) {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  ctx.metrics.httpRequests.inc({ method, route, status: String(status) })
  ctx.metrics.httpDuration.observe({ method, route }, seconds)
  const outcome = status >= 500 ? 'error' : status >= 400 ? 'rejected' : 'ok'
  const level = QUIET_PATHS.has(path) && status < 500 ? 'debug' : status >= 500 ? 'error' : 'info'
  ctx.log[level]({ requestId, method, path, route, status, durationMs: Math.round(seconds * 1e4) / 10, outcome }, 'http.request')
}
