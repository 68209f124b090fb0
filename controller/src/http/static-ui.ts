import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { serveStatic } from '@hono/node-server/serve-static'
import { Hono } from 'hono'
import type { AppEnv } from '../context.ts'

// From the sources (controller/src/http) or from the bundle (dist/controller); packages set OPSC_UI_DIR.
const CANDIDATES = ['../../../ui/dist', '../../ui/dist'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
export const DEFAULT_UI_DIR = CANDIDATES.find((dir) => existsSync(path.join(dir, 'index.html'))) ?? CANDIDATES[0]!

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>OpsConductor</title>
<p>The web UI has not been built. Run <code>npm run build:ui</code> and reload.</p>`

/**
 * Serves the built single-page app: real files first (hashed assets cached for a year),
 * then index.html for any other GET so client-side routes survive a reload.
 */
export function staticUi(uiDir: string = DEFAULT_UI_DIR) {
  const root = path.resolve(uiDir)
  const index = path.join(root, 'index.html')
  const app = new Hono<AppEnv>()
  app.use('*', async (c, next) => {
    await next()
    if (c.res.status !== 200) return
    // index.html must be revalidated so a deploy is picked up; hashed assets never change.
    const immutable = c.req.path.startsWith('/assets/')
    c.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
  })
  app.get('*', async (c, next) => {
    if (!existsSync(index)) return c.html(NOT_BUILT, 503)
    return serveStatic({ root })(c, next)
  })
  app.get('/assets/*', (c) => c.text('asset not found', 404))
  app.get('*', serveStatic({ root, path: 'index.html' }))
  return app
}
