import assert from 'node:assert/strict'
import type { Browser, Locator, Page } from 'playwright-core'
import { adminToken, apiCall, openPage, signIn, type OpenPage } from './harness.ts'

/* Helpers for the jobs pages' browser tests: data through the API, themes, and the builder's parts. */

export async function createJob(base: string, definition: Record<string, unknown>): Promise<{ id: string; version: number }> {
  const token = await adminToken(base)
  const res = await apiCall(base, 'POST', '/api/v1/jobs', token, definition)
  assert.equal(res.status, 201, JSON.stringify(res.body))
  return res.body as { id: string; version: number }
}

export async function getApi<T = any>(base: string, path: string): Promise<T> {
  const res = await apiCall(base, 'GET', path, await adminToken(base))
  assert.equal(res.status, 200, JSON.stringify(res.body))
  return res.body as T
}

export async function createTarget(base: string, body: Record<string, unknown>): Promise<void> {
  const res = await apiCall(base, 'POST', '/api/v1/targets', await adminToken(base), body)
  assert.equal(res.status, 201, JSON.stringify(res.body))
}

/** A signed-in page; `dark` sets the remembered theme before the app loads. */
export async function signedIn(browser: Browser, base: string, opts: { width?: number; dark?: boolean; user?: string; password?: string } = {}): Promise<OpenPage> {
  const open = await openPage(browser, opts.width ? { width: opts.width } : {})
  if (opts.dark) await open.context.addInitScript({ content: `localStorage.setItem('opsc.theme', 'dark')` })
  await signIn(open.page, base, opts.user, opts.password)
  // Sign-in lands on the dashboard (another page, with its own requests): start these tests from a clean slate.
  await open.page.goto(`${base}/jobs`)
  await open.page.getByRole('heading', { name: 'Jobs', level: 1 }).waitFor()
  open.problems.console.length = 0
  open.problems.pageErrors.length = 0
  return open
}

/** The step cards, in order. */
export const stepCards = (page: Page): Locator => page.locator('ol.step-list > li.step-card')

/** The step names as the builder lists them, in order. */
export async function stepNames(page: Page): Promise<string[]> {
  return stepCards(page).locator('.step-name').allTextContents()
}

export const stepGroup = (page: Page, n: number, name: string | RegExp): Locator => page.getByRole('group', { name: typeof name === 'string' ? `Step ${n}: ${name}` : name })

/** The text the builder's aria-live region announced last. */
export async function announced(page: Page): Promise<string> {
  return (await page.getByTestId('announcer').textContent()) ?? ''
}

/** Waits until `fn` holds (no fixed sleeps). */
export async function until(page: Page, fn: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await fn()) return
    await page.waitForTimeout(50)
  }
  assert.fail(`timed out waiting for ${what}`)
}
