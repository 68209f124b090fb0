import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { loadConfig } from '../../controller/src/config.ts'
import { createLogger } from '../../controller/src/log.ts'
import { startController, type RunningController } from '../../controller/src/main.ts'
import { freePort } from '../harness/agents.ts'
import { createPostgresDatabase, dropPostgresDatabase, testBackend } from '../harness/db.ts'

/*
 * Browser tests of the web UI: a real controller (in this process, on the test database), the
 * built UI it serves, and Debian's Chromium driven by playwright-core. Every page is screenshotted
 * under test-output/ui/, checked with axe-core (labels, contrast) and for console errors.
 */

export const CHROMIUM = '/usr/bin/chromium'
/** The built UI: ui/dist, or OPSC_UI_DIR (parallel work builds into separate folders). */
const UI_DIR = process.env.OPSC_UI_DIR ?? path.resolve(import.meta.dirname, '../../ui/dist')
const UI_INDEX = path.join(UI_DIR, 'index.html')
export const SHOTS = path.resolve(import.meta.dirname, '../../test-output/ui')

/** The reason browser tests skip, or false: without Chromium they say so instead of passing silently. */
export const skipUi = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install -y chromium); CI installs it`

export const ADMIN_PASSWORD = 'ui-test console passphrase 7Qk2'

export interface UiController {
  base: string
  controller: RunningController
  grpcPort: number
  stop(): Promise<void>
}

export async function startUiController(env: Record<string, string> = {}): Promise<UiController> {
  assert.ok(existsSync(UI_INDEX), `${UI_INDEX} is missing: run \`npm run build:ui\` before the browser tests`)
  const dataDir = mkdtempSync(path.join(tmpdir(), 'opsc-ui-'))
  // Postgres when the tests use it; otherwise the controller's own embedded PGlite in its data dir.
  const dbUrl = (await testBackend()) === 'postgres' ? await createPostgresDatabase({ migrated: true }) : undefined
  const grpcPort = await freePort()
  const cfg = loadConfig({
    OPSC_DATA_DIR: dataDir,
    OPSC_HTTP_PORT: '0',
    OPSC_GRPC_PORT: String(grpcPort),
    OPSC_BIND: '127.0.0.1',
    OPSC_LOG_LEVEL: 'silent',
    OPSC_ADMIN_PASSWORD: ADMIN_PASSWORD,
    OPSC_UI_DIR: UI_DIR,
    ...(dbUrl ? { DATABASE_URL: dbUrl } : {}),
    ...env,
  })
  const controller = await startController(cfg, createLogger({ level: 'silent' }))
  return {
    base: `https://127.0.0.1:${controller.httpPort}`,
    controller,
    grpcPort,
    async stop() {
      await controller.stop()
      if (dbUrl) await dropPostgresDatabase(dbUrl)
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
}

/** Everything the page complained about: console errors, uncaught exceptions, CSP violations. */
export interface Problems {
  console: string[]
  pageErrors: string[]
}

// Recorded by the page itself; CDP-injected scripts are not subject to the page's CSP.
const RECORD_CSP = `window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline'));
});`

export interface OpenPage {
  context: BrowserContext
  page: Page
  problems: Problems
}

/** A fresh browser context (its own cookies); the controller's certificate comes from its own CA. */
export async function openPage(browser: Browser, opts: { width?: number; height?: number } = {}): Promise<OpenPage> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: opts.width ?? 1280, height: opts.height ?? 800 } })
  await context.addInitScript({ content: RECORD_CSP })
  const page = await context.newPage()
  const problems: Problems = { console: [], pageErrors: [] }
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.console.push(`${msg.text()} (${msg.location().url})`)
  })
  page.on('pageerror', (err) => problems.pageErrors.push(err.message))
  return { context, page, problems }
}

/** Signs in through the sign-in form and waits for the app shell. */
export async function signIn(page: Page, base: string, username = 'admin', password = ADMIN_PASSWORD): Promise<void> {
  await page.goto(`${base}/login`)
  await page.getByLabel('Username').fill(username)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  // The shell's main region (on a phone the navigation is a closed menu).
  await page.locator('main#main').waitFor()
}

export async function assertClean(page: Page, problems: Problems, allowConsole: (text: string) => boolean = () => false): Promise<void> {
  assert.deepEqual(await page.evaluate('window.__csp'), [], 'CSP violations')
  assert.deepEqual(problems.pageErrors, [], 'uncaught errors in the page')
  assert.deepEqual(problems.console.filter((t) => !allowConsole(t)), [], 'console errors')
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

export interface AxeViolation {
  id: string
  impact: string | null
  help: string
  nodes: string[]
}

/** axe-core's WCAG 2 A/AA checks on the page as it is now (form labels, contrast, names, ARIA). */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  // Evaluated through CDP: the page's CSP does not apply, nothing is added to the app.
  if (!(await page.evaluate('typeof window.axe !== "undefined"'))) await page.evaluate(`${axeSource};0`)
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[] }> } }).axe
    const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }))
  })
}

export async function assertAccessible(page: Page, what: string): Promise<void> {
  const violations = await axeViolations(page)
  assert.deepEqual(violations, [], `accessibility violations on ${what}: ${JSON.stringify(violations, null, 1)}`)
}

/** A full-page screenshot under test-output/ui/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SHOTS, { recursive: true })
  const file = path.join(SHOTS, `${name}.png`)
  await page.screenshot({ path: file, fullPage: true })
  return file
}

/** The admin's bearer token, for setting up data through the API (the UI under test uses cookies). */
export async function adminToken(base: string, password = ADMIN_PASSWORD): Promise<string> {
  const res = await apiCall(base, 'POST', '/api/v1/auth/login', undefined, { username: 'admin', password })
  return (res.body as { access_token: string }).access_token
}

export async function apiCall(base: string, method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    // The controller's certificate is from its own CA.
    dispatcher: insecure,
  } as RequestInit)
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : undefined }
}

const { Agent } = await import('undici')
const insecure = new Agent({ connect: { rejectUnauthorized: false } })
