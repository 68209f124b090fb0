import { Hono } from 'hono'
import { requestId } from 'hono/request-id'
import { auditMutations } from '../../controller/src/audit/middleware.ts'
import { declaredRoutes } from '../../controller/src/auth/access.ts'
import { authenticate } from '../../controller/src/auth/middleware.ts'
import type { AppContext, AppEnv } from '../../controller/src/context.ts'
import { onError } from '../../controller/src/http/errors.ts'

/**
 * The API middleware of createApp (request id, context, authentication, audit, error shape)
 * around one feature router: for testing a router before it is mounted in app.ts.
 */
export function apiApp(ctx: AppContext, mountPath: string, routes: Hono<AppEnv>) {
  const app = new Hono<AppEnv>()
    .use(requestId({ headerName: 'x-request-id' }))
    .use(async (c, next) => {
      c.set('ctx', ctx)
      c.set('log', ctx.log)
      await next()
      ctx.log.info({ requestId: c.var.requestId, method: c.req.method, path: c.req.path, status: c.res.status }, 'http.request')
    })
    .use('/api/*', authenticate())
    .use('/api/*', auditMutations())
    .route(mountPath, routes)
    .onError(onError)
  declaredRoutes(app)
  return app
}
