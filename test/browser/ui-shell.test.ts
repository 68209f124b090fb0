import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { loadConfig } from '../../controller/src/config.ts'
import { createLogger } from '../../controller/src/log.ts'
import { startController, type RunningController } from '../../controller/src/main.ts'

const CHROMIUM = '/usr/bin/chromium'
const UI_INDEX = path.resolve(import.meta.dirname, '../../ui/dist/index.html')
const SCREENSHOT = '/tmp/ui-shell.png'

// Each test carries the reason, so a run without Chromium reports three skips rather than a silent pass.
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install -y chromium); CI installs it`

/** Everything the page complained about: console errors, uncaught exceptions, CSP violations. */
interface Problems {
  console: string[]
  pageErrors: string[]
}

// Recorded by the page itself; CDP-injected scripts are not subject to the page's CSP.
const RECORD_CSP = `window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline'));
});`

describe('web UI shell', () => {
  let dataDir: string
  let controller: RunningController
  let browser: Browser
  let base: string

  before(async () => {
    if (skip) return
    assert.ok(existsSync(UI_INDEX), `${UI_INDEX} is missing: run \`npm run build:ui\` before the browser tests`)
    dataDir = await mkdtemp(path.join(tmpdir(), 'opsc-ui-'))
    const cfg = loadConfig({
      OPSC_DATA_DIR: dataDir,
      OPSC_HTTP_PORT: '0',
      OPSC_GRPC_PORT: '0',
      OPSC_BIND: '127.0.0.1',
      OPSC_LOG_LEVEL: 'silent',
    })
    controller = await startController(cfg, createLogger({ level: 'silent' }))
    base = `https://127.0.0.1:${controller.httpPort}`
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
  })

  after(async () => {
    await browser?.close()
    await controller?.stop()
    if (dataDir) await rm(dataDir, { recursive: true, force: true })
  })

  /** A fresh context per test; the controller's certificate comes from its own self-signed CA. */
  async function open(): Promise<{ context: BrowserContext; page: Page; problems: Problems }> {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } })
    await context.addInitScript({ content: RECORD_CSP })
    const page = await context.newPage()
    const problems: Problems = { console: [], pageErrors: [] }
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.console.push(`${msg.text()} (${msg.location().url})`)
    })
    page.on('pageerror', (err) => problems.pageErrors.push(err.message))
    return { context, page, problems }
  }

  async function assertClean(page: Page, problems: Problems, allowConsole: (text: string) => boolean = () => false) {
    assert.deepEqual(await page.evaluate('window.__csp'), [], 'CSP violations')
    assert.deepEqual(problems.pageErrors, [], 'uncaught errors in the page')
    assert.deepEqual(problems.console.filter((t) => !allowConsole(t)), [], 'console errors')
  }

  test('dashboard shows the controller version, database backend and ready state', { skip }, async () => {
    const { context, page, problems } = await open()
    try {
      const res = await page.goto(`${base}/`)
      assert.equal(res?.status(), 200)
      assert.match(res?.headers()['content-security-policy'] ?? '', /default-src 'self'/)

      await assert.doesNotReject(page.getByTestId('controller-version').waitFor())
      assert.equal(await page.getByTestId('controller-version').textContent(), controller.ctx.version)
      assert.equal(await page.getByTestId('database-backend').textContent(), 'Embedded PGlite')
      const badge = page.getByTestId('readiness').locator('.badge')
      assert.equal(await badge.getAttribute('data-status'), 'ready')
      assert.equal(await badge.textContent(), 'Ready')

      assert.equal(await page.locator('.topbar .brand').textContent(), 'OpsConductor')
      const nav = page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Dashboard' })
      assert.equal(await nav.getAttribute('aria-current'), 'page')
      assert.equal(await page.title(), 'Dashboard · OpsConductor')

      await page.screenshot({ path: SCREENSHOT, fullPage: true })
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('a deep link loads the app shell and the router shows its not-found view', { skip }, async () => {
    const { context, page, problems } = await open()
    try {
      const res = await page.goto(`${base}/some/client/route`)
      assert.equal(res?.status(), 200, 'the SPA fallback serves index.html for client routes')
      assert.match(res?.headers()['content-type'] ?? '', /text\/html/)

      await page.getByRole('heading', { name: 'Page not found' }).waitFor()
      assert.equal(await page.locator('.not-found code').textContent(), '/some/client/route')
      assert.equal(await page.locator('.topbar .brand').textContent(), 'OpsConductor')

      // Navigating back is client-side: the dashboard renders without another document load.
      await page.getByRole('link', { name: 'Back to the dashboard' }).click()
      await page.getByTestId('controller-version').waitFor()
      assert.equal(new URL(page.url()).pathname, '/')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('a failing API call shows its code and message, and recovers on retry', { skip }, async () => {
    const { context, page, problems } = await open()
    try {
      const body = JSON.stringify({ error: { code: 'INTERNAL', message: 'version store exploded', request_id: 'req-ui-1' } })
      await page.route('**/api/v1/version', (route) => route.fulfill({ status: 500, contentType: 'application/json', body }))
      await page.goto(`${base}/`)

      const panel = page.getByRole('alert').first()
      await panel.waitFor()
      assert.match((await panel.textContent()) ?? '', /Could not load controller version.*INTERNAL.*version store exploded.*req-ui-1/s)
      // Readiness comes from another call and still renders.
      assert.equal(await page.getByTestId('readiness').locator('.badge').textContent(), 'Ready')

      await page.unroute('**/api/v1/version')
      await panel.getByRole('button', { name: 'Try again' }).click()
      await page.getByTestId('controller-version').waitFor()
      assert.equal(await page.getByTestId('controller-version').textContent(), controller.ctx.version)
      // Chromium logs every non-2xx response as a console error; only the one we forced is allowed.
      await assertClean(page, problems, (t) => t.includes('status of 500') && t.includes('/api/v1/version'))
    } finally {
      await context.close()
    }
  })
})
