import assert from 'node:assert/strict'
import { Secret, TOTP } from 'otpauth'
import type { Browser, Page } from 'playwright-core'
import { ADMIN_PASSWORD, apiCall, openPage, type OpenPage } from './harness.ts'

/*
 * Helpers for the users / audit / settings browser tests: accounts made through the API, signing
 * in as anyone through the real sign-in form, and TOTP codes an authenticator app would show.
 */

/** The code an authenticator app shows at `at` (default now) for a base32 secret. */
export function totpCode(secret: string, at = Date.now()): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp: at })
}

/**
 * A code for the next 30 s step: the controller accepts one step of drift and refuses a step at or
 * before the last one used, so this works right after another code was used (enrolment, sign-in).
 */
export const nextTotpCode = (secret: string) => totpCode(secret, Date.now() + 30_000)

export interface ApiUser {
  id: string
  username: string
  password: string
}

let counter = 0
/** A user made through the API with a known password (no password change pending). */
export async function createUser(base: string, token: string, role: 'viewer' | 'operator' | 'admin', name?: string): Promise<ApiUser> {
  const username = name ?? `${role}-${process.pid}-${++counter}`
  const password = `long passphrase for ${counter} ${role} zq`
  const res = await apiCall(base, 'POST', '/api/v1/users', token, { username, password, role, must_change_password: false })
  assert.equal(res.status, 201, JSON.stringify(res.body))
  return { id: (res.body as { id: string }).id, username, password }
}

export async function getUser(base: string, token: string, id: string): Promise<Record<string, unknown>> {
  const res = await apiCall(base, 'GET', `/api/v1/users/${id}`, token)
  assert.equal(res.status, 200, JSON.stringify(res.body))
  return res.body as Record<string, unknown>
}

/**
 * Fills the sign-in form (without waiting for what comes next: the shell, a setup page, an error).
 * `next` is where the app goes after signing in (not the dashboard, which other tests own).
 */
export async function submitSignIn(page: Page, base: string, username: string, password: string, next = '/settings'): Promise<void> {
  await page.goto(`${base}/login?next=${encodeURIComponent(next)}`)
  await page.getByLabel('Username').fill(username)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
}

/** A fresh browser context signed in as this user through the form, waiting for the console. */
export async function signedInAs(browser: Browser, base: string, user: { username: string; password: string }, opts: { width?: number; next?: string } = {}): Promise<OpenPage> {
  const opened = await openPage(browser, opts)
  await submitSignIn(opened.page, base, user.username, user.password, opts.next)
  await opened.page.getByRole('navigation', { name: 'Main' }).waitFor()
  return opened
}

/** The admin, signed in through the form, on `next`. */
export async function adminSignIn(page: Page, base: string, next: string): Promise<void> {
  await submitSignIn(page, base, 'admin', ADMIN_PASSWORD, next)
  // The shell (at phone width its navigation is folded into a menu).
  await page.locator('.shell').waitFor()
}

/** Switches the UI theme the way a user does (the toggle in the top bar). */
export async function useTheme(page: Page, theme: 'light' | 'dark'): Promise<void> {
  const current = await page.evaluate(() => document.documentElement.dataset.theme)
  if (current === theme) return
  await page.getByRole('button', { name: theme === 'dark' ? 'Switch to dark theme' : 'Switch to light theme' }).click()
  await page.waitForFunction((t) => document.documentElement.dataset.theme === t, theme)
}

/** Chromium logs every non-2xx response as a console error; these are the ones a test caused on purpose. */
export const expectedHttpErrors =
  (...statuses: number[]) =>
  (text: string) =>
    statuses.some((s) => text.includes(`status of ${s}`))
