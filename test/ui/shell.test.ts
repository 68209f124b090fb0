import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { TOTP, Secret } from 'otpauth'
import type { Browser } from 'playwright-core'
import { insertUser } from '../../controller/src/users/service.ts'
import { enrollTotp, confirmTotp } from '../../controller/src/auth/mfa.ts'
import { assertAccessible, assertClean, launchBrowser, openPage, screenshot, signIn, skipUi, startUiController, type UiController } from './harness.ts'

// The app shell: signing in (with MFA and the first-login password change), the session cookie
// flow (refresh, sign-out), role-aware navigation, the not-found view and error display.

let ui: UiController
let browser: Browser
const PASSWORD = 'shell test passphrase 9Lm4'

before(async () => {
  if (skipUi) return
  ui = await startUiController()
  browser = await launchBrowser()
  const { ctx } = ui.controller
  await insertUser(ctx.db, { username: 'vera', password: PASSWORD, role: 'viewer', must_change_password: false }, ctx.clock())
  await insertUser(ctx.db, { username: 'newbie', password: PASSWORD, role: 'operator', must_change_password: true }, ctx.clock())
  const { user } = await insertUser(ctx.db, { username: 'mfa-user', password: PASSWORD, role: 'operator', must_change_password: false }, ctx.clock())
  const { secret } = await enrollTotp(ctx, user.id)
  totp = new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' })
  await confirmTotp(ctx, user.id, totp.generate())
})
after(async () => {
  await browser?.close()
  await ui?.stop()
})
let totp: TOTP

describe('web UI shell', { skip: skipUi }, () => {
  test('a deep link while signed out goes to sign-in and back to the page after it; no console errors', async () => {
    const { context, page, problems } = await open()
    try {
      const res = await page.goto(`${ui.base}/jobs?tag=nightly`)
      assert.equal(res?.status(), 200)
      assert.match(res?.headers()['content-security-policy'] ?? '', /default-src 'self'/)
      await page.getByRole('heading', { name: 'Sign in' }).waitFor()
      assert.equal(new URL(page.url()).pathname, '/login')
      await assertAccessible(page, 'sign-in')
      await screenshot(page, 'shell-sign-in')
      await page.getByLabel('Username').fill('admin')
      await page.getByLabel('Password').fill('wrong password entirely')
      await page.getByRole('button', { name: 'Sign in' }).click()
      const alert = page.getByRole('alert')
      await alert.waitFor()
      assert.match((await alert.textContent()) ?? '', /UNAUTHENTICATED/)
      await page.getByLabel('Password').fill((await import('./harness.ts')).ADMIN_PASSWORD)
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.getByRole('navigation', { name: 'Main' }).waitFor()
      assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, '/jobs?tag=nightly')
      // The failed sign-in is the only logged failure.
      await assertClean(page, problems, (t) => t.includes('status of 401') && t.includes('/api/v1/auth/login'))
    } finally {
      await context.close()
    }
  })

  test('an absolute URL in ?next= is not followed', async () => {
    const { context, page } = await open()
    try {
      await page.goto(`${ui.base}/login?next=//evil.example/x`)
      await page.getByLabel('Username').fill('vera')
      await page.getByLabel('Password').fill(PASSWORD)
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.getByRole('navigation', { name: 'Main' }).waitFor()
      assert.equal(new URL(page.url()).host, new URL(ui.base).host)
      assert.equal(new URL(page.url()).pathname, '/')
    } finally {
      await context.close()
    }
  })

  test('users with MFA give a code as a second step', async () => {
    const { context, page, problems } = await open()
    try {
      await page.goto(`${ui.base}/login`)
      await page.getByLabel('Username').fill('mfa-user')
      await page.getByLabel('Password').fill(PASSWORD)
      await page.getByRole('button', { name: 'Sign in' }).click()
      const code = page.getByLabel(/Code from your authenticator app/)
      await code.waitFor()
      await assertAccessible(page, 'the MFA step')
      await screenshot(page, 'shell-mfa-step')
      // The next period's code: the one used at enrolment may not be used twice.
      await code.fill(totp.generate({ timestamp: Date.now() + 30_000 }))
      await page.getByRole('button', { name: 'Verify' }).click()
      await page.getByRole('navigation', { name: 'Main' }).waitFor()
      await assertClean(page, problems, (t) => t.includes('status of 401') && t.includes('/api/v1/auth/login'))
    } finally {
      await context.close()
    }
  })

  test('a generated password must be changed before anything else', async () => {
    const { context, page, problems } = await open()
    try {
      await page.goto(`${ui.base}/login`)
      await page.getByLabel('Username').fill('newbie')
      await page.getByLabel('Password').fill(PASSWORD)
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.getByRole('heading', { name: 'Choose your password' }).waitFor()
      assert.equal(await page.getByRole('navigation', { name: 'Main' }).count(), 0, 'no navigation before the change')
      await assertAccessible(page, 'the password change')
      await screenshot(page, 'shell-password-change')
      await page.getByLabel('Current password').fill(PASSWORD)
      await page.getByLabel('New password', { exact: true }).fill('short')
      await page.getByLabel('New password again').fill('short')
      await page.getByRole('button', { name: 'Change password' }).click()
      // The server's rule, shown by its field.
      const fieldError = page.locator('.field.invalid .field-error')
      await fieldError.waitFor()
      assert.ok(((await fieldError.textContent()) ?? '').length > 0)
      const fresh = 'a much longer passphrase 4Yt8'
      await page.getByLabel('New password', { exact: true }).fill(fresh)
      await page.getByLabel('New password again').fill(fresh)
      await page.getByRole('button', { name: 'Change password' }).click()
      await page.getByRole('navigation', { name: 'Main' }).waitFor()
      await assertClean(page, problems, (t) => t.includes('status of 400') && t.includes('/api/v1/auth/me'))
    } finally {
      await context.close()
    }
  })

  test('navigation follows the role: a viewer sees no admin pages', async () => {
    const { context, page, problems } = await open()
    try {
      await signIn(page, ui.base, 'vera', PASSWORD)
      const nav = page.getByRole('navigation', { name: 'Main' })
      const links = await nav.getByRole('link').allTextContents()
      assert.ok(links.includes('Dashboard') && links.includes('Runs') && links.includes('Jobs'))
      for (const hidden of ['Users', 'Audit log', 'Credentials', 'Agents']) assert.ok(!links.includes(hidden), `${hidden} is hidden from viewers`)
      assert.match((await page.locator('.user-menu').textContent()) ?? '', /vera.*viewer/)
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('an expired access token is refreshed silently; sign-out ends the session', async () => {
    const { context, page, problems } = await open()
    try {
      await signIn(page, ui.base)
      const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents()
      assert.ok(links.includes('Users') && links.includes('Audit log'), 'an admin sees every page')
      // The access cookie lapses (it lives 15 minutes); the refresh cookie brings a new one.
      const cookies = await context.cookies()
      await context.clearCookies()
      await context.addCookies(cookies.filter((c) => c.name !== 'opsc_access'))
      await page.reload()
      await page.getByRole('navigation', { name: 'Main' }).waitFor()
      assert.ok((await context.cookies()).some((c) => c.name === 'opsc_access'), 'a new access cookie')
      await screenshot(page, 'shell-dashboard')
      await assertAccessible(page, 'the dashboard shell')

      await page.getByRole('button', { name: 'Sign out' }).click()
      await page.getByRole('heading', { name: 'Sign in' }).waitFor()
      assert.deepEqual((await context.cookies()).filter((c) => c.name.startsWith('opsc_')).map((c) => c.name), [])
      await page.goto(`${ui.base}/runs`)
      await page.getByRole('heading', { name: 'Sign in' }).waitFor()
      // The refresh after the reload answered 401 once before the new cookie arrived.
      await assertClean(page, problems, (t) => t.includes('status of 401'))
    } finally {
      await context.close()
    }
  })

  test('dark theme and a 390 px phone: menu button, no horizontal overflow, still accessible', async () => {
    const { context, page, problems } = await open({ width: 390, height: 844 })
    try {
      await signIn(page, ui.base)
      assert.equal(await page.getByRole('navigation', { name: 'Main' }).isVisible(), false, 'a phone shows the navigation as a menu')
      await page.getByRole('button', { name: 'Menu' }).click()
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Runs' }).click()
      await page.waitForURL(/\/runs$/)
      assert.equal(await page.getByRole('navigation', { name: 'Main' }).isVisible(), false, 'the menu closes after navigating')
      await page.getByRole('button', { name: /dark theme/ }).click()
      assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark')
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
      assert.ok(overflow <= 0, `no horizontal scrolling at 390 px (overflow ${overflow}px)`)
      await assertAccessible(page, 'phone layout, dark')
      await screenshot(page, 'shell-phone-dark')
      await page.reload()
      assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark', 'the choice is remembered')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('an unknown route shows the not-found view inside the shell', async () => {
    const { context, page, problems } = await open()
    try {
      await signIn(page, ui.base)
      const res = await page.goto(`${ui.base}/some/client/route`)
      assert.equal(res?.status(), 200, 'the SPA fallback serves index.html for client routes')
      await page.getByRole('heading', { name: 'Page not found' }).waitFor()
      assert.equal(await page.locator('.not-found code').textContent(), '/some/client/route')
      await page.getByRole('link', { name: 'Back to the dashboard' }).click()
      await page.waitForURL(`${ui.base}/`)
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })
})

function open(viewport?: { width: number; height: number }) {
  return openPage(browser, viewport ?? {})
}
