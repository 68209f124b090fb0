import assert from 'node:assert/strict'
import type { Browser, Page } from 'playwright-core'
import { insertUser } from '../../controller/src/users/service.ts'
import { ADMIN_PASSWORD, assertAccessible, openPage, screenshot, type OpenPage, type UiController } from './harness.ts'

/** Shared by the targets and credentials browser tests: users of each role, themes, the standard shots. */

export const PASSWORD = 'targets ui passphrase 5Rn8'

export async function addUsers(ui: UiController): Promise<void> {
  const { ctx } = ui.controller
  await insertUser(ctx.db, { username: 'olga', password: PASSWORD, role: 'operator', must_change_password: false }, ctx.clock())
  await insertUser(ctx.db, { username: 'viktor', password: PASSWORD, role: 'viewer', must_change_password: false }, ctx.clock())
}

export type As = 'admin' | 'olga' | 'viktor'

/**
 * A signed-in page (admin, operator olga or viewer viktor) at the given width, signed in through
 * the form straight to `path` (these tests are about their own pages, not the dashboard).
 */
export async function session(browser: Browser, ui: UiController, as: As = 'admin', width = 1280, path = '/targets'): Promise<OpenPage> {
  const opened = await openPage(browser, { width, height: 860 })
  const { page } = opened
  await page.goto(`${ui.base}/login?next=${encodeURIComponent(path)}`)
  await page.getByLabel('Username').fill(as)
  await page.getByLabel('Password').fill(as === 'admin' ? ADMIN_PASSWORD : PASSWORD)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.locator('main#main').waitFor()
  return opened
}

export async function setTheme(page: Page, theme: 'light' | 'dark'): Promise<void> {
  const toggle = page.getByRole('button', { name: theme === 'dark' ? 'Switch to dark theme' : 'Switch to light theme' })
  if (await toggle.count()) await toggle.click()
  await page.waitForFunction((t) => document.documentElement.dataset.theme === t, theme)
}

/** axe in light and dark, screenshots of both; the caller has the page in the state to record. */
export async function checkBothThemes(page: Page, name: string): Promise<void> {
  await setTheme(page, 'light')
  await assertAccessible(page, `${name} (light)`)
  await screenshot(page, name)
  await setTheme(page, 'dark')
  await assertAccessible(page, `${name} (dark)`)
  await screenshot(page, `${name}-dark`)
  await setTheme(page, 'light')
}

/** The same page at a phone's width: axe and a screenshot. */
export async function checkPhone(browser: Browser, ui: UiController, path: string, name: string, ready: (page: Page) => Promise<unknown>, as: As = 'admin'): Promise<void> {
  const { context, page } = await session(browser, ui, as, 390, path)
  try {
    await page.goto(`${ui.base}${path}`)
    await ready(page)
    const width = await page.evaluate(() => document.documentElement.scrollWidth)
    assert.ok(width <= 390, `${name} at 390 px is ${width} px wide: something does not fit`)
    await assertAccessible(page, `${name} at 390 px`)
    await screenshot(page, `${name}-phone`)
  } finally {
    await context.close()
  }
}
