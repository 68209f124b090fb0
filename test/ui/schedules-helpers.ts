import assert from 'node:assert/strict'
import type { Browser, Page } from 'playwright-core'
import { insertUser } from '../../controller/src/users/service.ts'
import { ADMIN_PASSWORD, adminToken, apiCall, launchBrowser, openPage, startUiController, type OpenPage, type UiController } from './harness.ts'

/*
 * Shared by the schedules and notifications browser tests: one controller and browser per file,
 * a viewer and an operator beside the admin, API calls as the admin, and small waits.
 */

export const USER_PASSWORD = 'schedules ui passphrase 4Rt7'

export interface Setup {
  ui: UiController
  browser: Browser
  token: string
  /** API call as the admin; asserts the status when `expect` is given. */
  api: <T = any>(method: string, path: string, body?: unknown, expect?: number) => Promise<T>
  viewerId: string
  operatorId: string
  stop(): Promise<void>
}

export async function setUp(env: Record<string, string> = {}): Promise<Setup> {
  const ui = await startUiController(env)
  const browser = await launchBrowser()
  const token = await adminToken(ui.base)
  const { ctx } = ui.controller
  const viewer = await insertUser(ctx.db, { username: 'vic-viewer', password: USER_PASSWORD, role: 'viewer', must_change_password: false }, ctx.clock())
  const operator = await insertUser(ctx.db, { username: 'olga-operator', password: USER_PASSWORD, role: 'operator', must_change_password: false }, ctx.clock())
  const api = async <T>(method: string, path: string, body?: unknown, expect?: number): Promise<T> => {
    const res = await apiCall(ui.base, method, path, token, body)
    if (expect !== undefined) assert.equal(res.status, expect, `${method} ${path}: ${JSON.stringify(res.body)}`)
    return res.body as T
  }
  return {
    ui,
    browser,
    token,
    api,
    viewerId: viewer.user.id,
    operatorId: operator.user.id,
    async stop() {
      await browser.close()
      await ui.stop()
    },
  }
}

/**
 * A signed-in page (the admin by default, or the viewer / operator), landed on `path` through the
 * sign-in form's `?next=` — so only the pages under test are loaded.
 */
export async function signedIn(s: Setup, opts: { width?: number; height?: number; as?: 'admin' | 'viewer' | 'operator'; dark?: boolean; path?: string } = {}): Promise<OpenPage> {
  const opened = await openPage(s.browser, { width: opts.width ?? 1280, height: opts.height ?? 900 })
  if (opts.dark) await opened.context.addInitScript({ content: "localStorage.setItem('opsc.theme', 'dark')" })
  const who = opts.as ?? 'admin'
  const { page } = opened
  await page.goto(`${s.ui.base}/login?next=${encodeURIComponent(opts.path ?? '/schedules')}`)
  await page.getByLabel('Username').fill(who === 'admin' ? 'admin' : who === 'viewer' ? 'vic-viewer' : 'olga-operator')
  await page.getByLabel('Password').fill(who === 'admin' ? ADMIN_PASSWORD : USER_PASSWORD)
  await page.getByRole('button', { name: 'Sign in' }).click()
  // The shell (its navigation is a menu on phones).
  await page.locator('main#main').waitFor()
  return opened
}

/** Waits until the condition holds (polling the page), failing with what it waited for. */
export async function until(page: Page, what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await page.waitForTimeout(100)
  }
}

/**
 * Nothing in the page's content is wider than the content area (tables scroll inside their own
 * box). Measured on <main>: the shell's top bar is not these pages' to fix.
 */
export async function assertNoPageOverflow(page: Page, what: string): Promise<void> {
  const [inMain, inPage] = (await page.evaluate(`(() => {
    const main = document.querySelector('main#main')
    const bar = document.querySelector('.topbar')
    const doc = document.documentElement
    return [main.scrollWidth - main.clientWidth, doc.scrollWidth - Math.max(doc.clientWidth, bar ? bar.scrollWidth : 0)]
  })()`)) as [number, number]
  assert.ok(inMain <= 0, `nothing overflows the content on ${what} (overflow ${inMain}px)`)
  assert.ok(inPage <= 0, `nothing widens the page on ${what} (overflow ${inPage}px)`)
}
