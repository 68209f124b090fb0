import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { adminSignIn, createUser, expectedHttpErrors, getUser, nextTotpCode, signedInAs, submitSignIn, totpCode, useTheme } from './admin-helpers.ts'
import { adminToken, apiCall, assertAccessible, assertClean, launchBrowser, openPage, screenshot, skipUi, startUiController, type UiController } from './harness.ts'

/*
 * Users, API tokens and settings in a real Chromium against a real controller: every action is
 * checked in what the page shows and in what the API stored.
 */

const skip = skipUi

describe('users and settings pages', { skip }, () => {
  let ui: UiController
  let browser: Browser
  let base: string
  let token: string

  before(async () => {
    ui = await startUiController()
    base = ui.base
    browser = await launchBrowser()
    token = await adminToken(base)
  })
  after(async () => {
    await browser?.close()
    await ui?.stop()
  })

  const usersApi = async (q: string) => ((await apiCall(base, 'GET', `/api/v1/users?q=${encodeURIComponent(q)}`, token)).body as { items: Record<string, unknown>[] }).items

  /** The users page as the admin, ready. */
  async function adminOnUsers(width?: number) {
    const opened = await openPage(browser, { width })
    await adminSignIn(opened.page, base, '/users')
    await opened.page.getByRole('table', { name: 'Users' }).waitFor()
    return opened
  }

  const row = (page: Page, username: string) => page.locator(`tr[data-user="${username}"]`)

  test('an admin creates an operator with a generated password; the server’s 400 shows by its field; the new user must choose a password at first sign-in', async () => {
    const { context, page, problems } = await adminOnUsers()
    try {
      assert.equal(await page.title(), 'Users · OpsConductor')
      await row(page, 'admin').waitFor()
      await assertAccessible(page, 'the users page')
      await screenshot(page, 'users-list')

      await page.getByRole('button', { name: 'New user' }).click()
      const dialog = page.getByRole('dialog', { name: 'New user' })
      await dialog.waitFor()
      // The first field has focus, not the close button.
      assert.equal(await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.name), 'username')

      // A username the server refuses: its message appears under the Username field.
      await dialog.getByLabel('Username').fill('no spaces allowed')
      await dialog.getByRole('button', { name: 'Create user' }).click()
      const username = dialog.getByLabel('Username')
      await page.waitForFunction(() => document.querySelector('input[name="username"]')?.getAttribute('aria-invalid') === 'true')
      const note = await username.getAttribute('aria-describedby')
      assert.match((await page.locator(`[id="${note}"]`).textContent()) ?? '', /letters, digits/)
      await assertAccessible(page, 'the new-user dialog with a server error')
      await screenshot(page, 'users-create-invalid')

      await username.fill('olivia')
      await dialog.getByLabel('Display name').fill('Olivia Ops')
      await dialog.getByLabel('Email').fill('olivia@example.test')
      await dialog.getByLabel('Role', { exact: true }).selectOption('operator')
      await dialog.getByRole('button', { name: 'Create user' }).click()

      const created = page.getByRole('dialog', { name: 'User created' })
      const secret = created.getByLabel('Initial password for olivia')
      await secret.waitFor()
      const initialPassword = await secret.inputValue()
      assert.match(initialPassword, /^[A-Za-z0-9]{24}$/)
      assert.match((await created.textContent()) ?? '', /only now/)
      await screenshot(page, 'users-created-password')

      const [stored] = await usersApi('olivia')
      assert.deepEqual(
        { role: stored?.role, display_name: stored?.display_name, email: stored?.email, must_change_password: stored?.must_change_password, disabled: stored?.disabled },
        { role: 'operator', display_name: 'Olivia Ops', email: 'olivia@example.test', must_change_password: true, disabled: false },
      )

      await created.getByRole('button', { name: 'Done' }).click()
      await created.waitFor({ state: 'detached' })
      assert.match((await row(page, 'olivia').textContent()) ?? '', /Olivia Ops.*Operator.*Active.*Must change password.*Never/s)
      // Focus went back to the button that opened the dialog.
      assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'New user')

      // Olivia signs in with the generated password and must choose her own first.
      const olivia = await openPage(browser)
      try {
        await submitSignIn(olivia.page, base, 'olivia', initialPassword)
        await olivia.page.getByRole('heading', { name: 'Choose your password' }).waitFor()
        await olivia.page.getByLabel('Current password').fill(initialPassword)
        await olivia.page.getByLabel('New password', { exact: true }).fill('she picks a long one 42')
        await olivia.page.getByLabel('New password again').fill('she picks a long one 42')
        await olivia.page.getByRole('button', { name: 'Change password' }).click()
        await olivia.page.getByRole('navigation', { name: 'Main' }).waitFor()
        assert.equal((await usersApi('olivia'))[0]?.must_change_password, false)
        // An operator: no Users or Audit log in the navigation.
        const nav = olivia.page.getByRole('navigation', { name: 'Main' })
        assert.equal(await nav.getByRole('link', { name: 'Users' }).count(), 0)
        await assertClean(olivia.page, olivia.problems)
      } finally {
        await olivia.context.close()
      }

      // Search and the role filter ask the server.
      await page.getByLabel('Search').fill('oliv')
      await page.waitForFunction(() => document.querySelectorAll('tr[data-user]').length === 1)
      await row(page, 'olivia').waitFor()
      await page.getByLabel('Search').fill('')
      await page.getByLabel('Role', { exact: true }).selectOption('admin')
      await page.waitForFunction(() => [...document.querySelectorAll('tr[data-user]')].every((r) => r.getAttribute('data-user') === 'admin'))
      await page.getByLabel('Search').fill('nobody-by-that-name')
      await page.getByText('No users match these filters').waitFor()
      await assertAccessible(page, 'the users page with no match')

      await assertClean(page, problems, expectedHttpErrors(400))
    } finally {
      await context.close()
    }
  })

  test('an admin changes a role, disables (sign-in refused), enables, revokes sessions, resets a password and deletes the user', async () => {
    const victor = await createUser(base, token, 'viewer', 'victor')
    const { context, page, problems } = await adminOnUsers()
    const theirs = await signedInAs(browser, base, victor)
    try {
      await row(page, 'victor').getByRole('button', { name: 'victor' }).click()
      const panel = page.getByRole('dialog', { name: 'victor' })
      await panel.waitFor()
      await assertAccessible(page, 'the user panel')
      await screenshot(page, 'users-panel')

      // Role and profile.
      await panel.getByLabel('Role', { exact: true }).selectOption('operator')
      await panel.getByLabel('Display name').fill('Victor V.')
      await panel.getByRole('button', { name: 'Save changes' }).click()
      await panel.getByText('Saved.').waitFor()
      assert.deepEqual([(await getUser(base, token, victor.id)).role, (await getUser(base, token, victor.id)).display_name], ['operator', 'Victor V.'])
      // A 400 from the server lands under its field.
      await panel.getByLabel('Email').fill('not-an-email')
      await panel.getByRole('button', { name: 'Save changes' }).click()
      await panel.locator('.field.invalid').filter({ has: page.getByLabel('Email') }).locator('.field-error').waitFor()
      await panel.getByLabel('Email').fill('')

      // Disable: asks first, then the account cannot sign in.
      await panel.getByRole('button', { name: 'Disable account' }).click()
      const confirm = page.getByRole('alertdialog', { name: 'Disable victor?' })
      await confirm.waitFor()
      assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel')
      await screenshot(page, 'users-confirm-disable')
      await confirm.getByRole('button', { name: 'Disable account' }).click()
      await panel.getByText('Account disabled; its sessions ended.').waitFor()
      assert.equal((await getUser(base, token, victor.id)).disabled, true)
      await panel.getByRole('button', { name: 'Enable account' }).waitFor()

      // Victor's open console loses its session at the next request, and the sign-in form refuses him.
      await theirs.page.goto(`${base}/settings`)
      await theirs.page.getByRole('heading', { name: 'Sign in' }).waitFor()
      await submitSignIn(theirs.page, base, 'victor', victor.password)
      await theirs.page.getByRole('alert').getByText('invalid username or password').waitFor()

      await panel.getByRole('button', { name: 'Enable account' }).click()
      await panel.getByText('Account enabled.').waitFor()
      assert.equal((await getUser(base, token, victor.id)).disabled, false)
      await submitSignIn(theirs.page, base, 'victor', victor.password)
      await theirs.page.getByRole('navigation', { name: 'Main' }).waitFor()

      // Revoke all sessions: his console is signed out.
      await panel.getByRole('button', { name: 'Revoke all sessions' }).click()
      await page.getByRole('alertdialog', { name: 'Revoke all sessions of victor?' }).getByRole('button', { name: 'Revoke all sessions' }).click()
      await panel.getByText('1 session revoked.').waitFor()
      // His next request (saving his profile) finds the session gone: back to the sign-in page.
      await theirs.page.getByRole('button', { name: 'Save profile' }).click()
      await theirs.page.getByRole('heading', { name: 'Sign in' }).waitFor()

      // Reset the password: generated, shown once; victor must change it at his next sign-in.
      await panel.getByRole('button', { name: 'Generate password' }).click()
      const generated = await panel.getByLabel('New password').inputValue()
      assert.equal(generated.length, 20)
      await panel.getByRole('button', { name: 'Reset password' }).click()
      const shown = panel.getByLabel('New password for victor')
      await shown.waitFor()
      assert.equal(await shown.inputValue(), generated)
      assert.equal((await getUser(base, token, victor.id)).must_change_password, true)
      await submitSignIn(theirs.page, base, 'victor', generated)
      await theirs.page.getByRole('heading', { name: 'Choose your password' }).waitFor()

      // Escape closes the panel and gives focus back to the user's row.
      await page.keyboard.press('Escape')
      await panel.waitFor({ state: 'detached' })
      assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'victor')
      assert.match((await row(page, 'victor').textContent()) ?? '', /Operator.*Active.*Must change password/s)

      // The last admin cannot be demoted: the server's refusal shows, the panel stays usable.
      await row(page, 'admin').getByRole('button', { name: 'admin' }).click()
      const own = page.getByRole('dialog', { name: 'admin' })
      await own.getByLabel('Role', { exact: true }).selectOption('viewer')
      await own.getByRole('button', { name: 'Save changes' }).click()
      await own.getByRole('alert').getByText(/last enabled admin/).waitFor()
      assert.equal(await own.getByRole('button', { name: 'Disable account' }).count(), 0, 'no disabling yourself')
      await own.getByRole('button', { name: 'Close' }).click()
      await own.waitFor({ state: 'detached' })

      // Delete, after a confirmation: the row goes, the API no longer knows him.
      await row(page, 'victor').getByRole('button', { name: 'victor' }).click()
      await panel.getByRole('button', { name: 'Delete user' }).click()
      await page.getByRole('alertdialog', { name: 'Delete victor?' }).getByRole('button', { name: 'Delete user' }).click()
      await panel.waitFor({ state: 'detached' })
      await row(page, 'victor').waitFor({ state: 'detached' })
      assert.equal((await apiCall(base, 'GET', `/api/v1/users/${victor.id}`, token)).status, 404)

      await assertClean(page, problems, expectedHttpErrors(400, 409))
      await assertClean(theirs.page, theirs.problems, expectedHttpErrors(401))
    } finally {
      await theirs.context.close()
      await context.close()
    }
  })

  test('an API token is shown once, works against the API, and is refused once revoked', async () => {
    const { context, page, problems } = await openPage(browser)
    try {
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base })
      await adminSignIn(page, base, '/settings')
      const section = page.getByRole('region', { name: 'API tokens', exact: true })
      await section.getByText('No API tokens yet').waitFor()

      // The server refuses an empty name: its message is under the Token name field.
      await section.getByRole('button', { name: 'Create token' }).click()
      await section.locator('.field.invalid').filter({ has: page.getByLabel('Token name') }).waitFor()

      await section.getByLabel('Token name').fill('ci-deploy')
      await section.getByLabel('Token role').selectOption('operator')
      await section.getByLabel('Expires').selectOption('30')
      await section.getByRole('button', { name: 'Create token' }).click()
      const value = section.getByLabel('Your new token')
      await value.waitFor()
      const secret = await value.inputValue()
      assert.match(secret, /^opsc_/)
      assert.match((await section.getByRole('region', { name: 'New API token', exact: true }).textContent()) ?? '', /only time it is shown/)
      await section.getByRole('button', { name: 'Copy token' }).click()
      await section.getByText('Copied to the clipboard').waitFor()
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret)
      await assertAccessible(page, 'settings with a new token shown')
      await screenshot(page, 'settings-token-created')

      // The token works as an operator.
      const verify = await apiCall(base, 'GET', '/api/v1/auth/verify', secret)
      assert.equal(verify.status, 200)
      assert.deepEqual((verify.body as { user: { role: string }; api_token: { name: string } }).api_token.name, 'ci-deploy')
      assert.equal((verify.body as { user: { role: string } }).user.role, 'operator')

      // Dismissed, it is gone from the page for good; the list shows only its prefix.
      await section.getByRole('button', { name: 'I have stored it' }).click()
      await page.reload()
      await page.locator('tr[data-token="ci-deploy"]').waitFor()
      assert.equal((await page.content()).includes(secret), false, 'the secret is never shown again')
      const tokenRow = page.locator('tr[data-token="ci-deploy"]')
      assert.match((await tokenRow.textContent()) ?? '', new RegExp(`ci-deploy${secret.slice(0, 12)}…operator.*Active`, 's'))

      // Revoke, with a confirmation; the API refuses it from then on.
      await tokenRow.getByRole('button', { name: 'Revoke token ci-deploy' }).click()
      const confirm = page.getByRole('alertdialog', { name: 'Revoke token ci-deploy?' })
      await confirm.waitFor()
      await screenshot(page, 'settings-token-revoke')
      await confirm.getByRole('button', { name: 'Revoke token' }).click()
      await confirm.waitFor({ state: 'detached' })
      await tokenRow.getByText('Revoked').waitFor()
      assert.equal((await apiCall(base, 'GET', '/api/v1/auth/verify', secret)).status, 401)

      await assertClean(page, problems, expectedHttpErrors(400))
    } finally {
      await context.close()
    }
  })

  test('a user edits their profile, changes their password (wrong input shown by its field) and signs out everywhere', async () => {
    const paula = await createUser(base, token, 'viewer', 'paula')
    const { context, page, problems } = await signedInAs(browser, base, paula)
    try {
      await page.goto(`${base}/settings`)
      await page.getByRole('heading', { name: 'Settings', level: 1 }).waitFor()
      const profile = page.getByRole('region', { name: 'Profile', exact: true })
      await profile.getByLabel('Display name').fill('Paula P.')
      await profile.getByLabel('Email').fill('paula@example.test')
      await profile.getByRole('button', { name: 'Save profile' }).click()
      await profile.getByText('Profile saved.').waitFor()
      assert.deepEqual([(await getUser(base, token, paula.id)).display_name, (await getUser(base, token, paula.id)).email], ['Paula P.', 'paula@example.test'])
      await page.locator('.topbar .user-name').getByText('Paula P.').waitFor()

      const password = page.getByRole('region', { name: 'Password', exact: true })
      const fill = async (current: string, next: string, again = next) => {
        await password.getByLabel('Current password').fill(current)
        await password.getByLabel('New password', { exact: true }).fill(next)
        await password.getByLabel('New password again').fill(again)
        await password.getByRole('button', { name: 'Change password' }).click()
      }
      await fill('not my password at all', 'a brand new one for her')
      await password.locator('.field.invalid').filter({ has: page.getByLabel('Current password') }).getByText('wrong password').waitFor()
      await fill(paula.password, 'short')
      await password.locator('.field.invalid').filter({ has: page.getByLabel('New password', { exact: true }) }).getByText(/at least 12/).waitFor()
      await fill(paula.password, 'a brand new one for her', 'something else')
      await password.getByText('the two passwords differ').waitFor()
      await assertAccessible(page, 'settings with password errors')
      await fill(paula.password, 'a brand new one for her')
      await password.getByText(/Password changed/).waitFor()

      await page.getByRole('button', { name: 'Sign out', exact: true }).click()
      await page.getByRole('heading', { name: 'Sign in' }).waitFor()
      await submitSignIn(page, base, 'paula', 'a brand new one for her')
      await page.getByRole('navigation', { name: 'Main' }).waitFor()

      // Sign out everywhere: this session ends, and so does the one in another browser.
      const other = await signedInAs(browser, base, { username: 'paula', password: 'a brand new one for her' })
      try {
        await page.getByRole('button', { name: 'Sign out everywhere' }).click()
        await page.getByRole('alertdialog', { name: 'Sign out everywhere?' }).getByRole('button', { name: 'Sign out everywhere' }).click()
        await page.getByRole('heading', { name: 'Sign in' }).waitFor()
        await other.page.getByRole('button', { name: 'Save profile' }).click()
        await other.page.getByRole('heading', { name: 'Sign in' }).waitFor()
        await assertClean(other.page, other.problems, expectedHttpErrors(401))
      } finally {
        await other.context.close()
      }
      await assertClean(page, problems, expectedHttpErrors(400, 403))
    } finally {
      await context.close()
    }
  })

  test('MFA is enabled from settings, then asked for at sign-in, and turned off with a recovery code', async () => {
    const mia = await createUser(base, token, 'operator', 'mia')
    const { context, page, problems } = await signedInAs(browser, base, mia)
    try {
      await page.goto(`${base}/settings`)
      const mfa = page.getByRole('region', { name: 'Two-factor sign-in', exact: true })
      await mfa.getByText('Off', { exact: true }).waitFor()
      await mfa.getByRole('button', { name: 'Set up two-factor sign-in' }).click()
      const key = mfa.getByLabel('Secret key')
      await key.waitFor()
      const secret = await key.inputValue()
      assert.match(secret, /^[A-Z2-7]{32}$/)
      assert.match((await mfa.getByRole('link', { name: 'Open in authenticator app' }).getAttribute('href')) ?? '', /^otpauth:\/\/totp\/.*secret=/)
      await assertAccessible(page, 'MFA enrolment')
      await screenshot(page, 'settings-mfa-enrol')

      // A wrong code: the server's message under the code field.
      const wrong = totpCode(secret) === '000000' ? '111111' : '000000'
      await mfa.getByLabel('Code from the app').fill(wrong)
      await mfa.getByRole('button', { name: 'Turn on two-factor sign-in' }).click()
      await mfa.locator('.field.invalid').getByText('does not match').waitFor()

      await mfa.getByLabel('Code from the app').fill(totpCode(secret))
      await mfa.getByRole('button', { name: 'Turn on two-factor sign-in' }).click()
      const codes = mfa.getByRole('list', { name: 'Recovery codes' }).getByRole('listitem')
      await codes.first().waitFor()
      const recovery = await codes.allTextContents()
      assert.equal(recovery.length, 10)
      await mfa.getByText('On', { exact: true }).waitFor()
      await screenshot(page, 'settings-mfa-recovery-codes')
      await mfa.getByRole('button', { name: 'I have saved them' }).click()
      assert.equal((await getUser(base, token, mia.id)).mfa_enabled, true)

      // Signing in now takes a code, on the sign-in page's second step.
      await page.getByRole('button', { name: 'Sign out', exact: true }).click()
      await submitSignIn(page, base, 'mia', mia.password)
      await page.getByRole('heading', { name: 'Two-factor code' }).waitFor()
      await screenshot(page, 'sign-in-mfa-step')
      await page.getByLabel(/Code from your authenticator app/).fill(nextTotpCode(secret))
      await page.getByRole('button', { name: 'Verify' }).click()
      await page.getByRole('navigation', { name: 'Main' }).waitFor()

      // Turning it off takes the password and a code (a recovery code works too).
      await page.goto(`${base}/settings`)
      await mfa.getByLabel('Password', { exact: true }).fill('not the password')
      await mfa.getByLabel('Code', { exact: true }).fill(recovery[0]!)
      await mfa.getByRole('button', { name: 'Turn off two-factor sign-in' }).click()
      await mfa.getByRole('alert').getByText('password or code is wrong').waitFor()
      await mfa.getByLabel('Password', { exact: true }).fill(mia.password)
      await mfa.getByRole('button', { name: 'Turn off two-factor sign-in' }).click()
      await mfa.getByText('Two-factor sign-in is off.').waitFor()
      assert.equal((await getUser(base, token, mia.id)).mfa_enabled, false)
      await assertClean(page, problems, expectedHttpErrors(400, 401, 403))
    } finally {
      await context.close()
    }
  })

  test('an admin saves the security settings and reads them back', async () => {
    const { context, page, problems } = await openPage(browser)
    try {
      await adminSignIn(page, base, '/settings')
      const security = page.getByRole('region', { name: 'Security (all users)', exact: true })
      const selfReg = security.getByLabel('Allow self-registration')
      await selfReg.waitFor()
      assert.equal(await selfReg.isChecked(), false)
      assert.equal((await apiCall(base, 'POST', '/api/v1/auth/register', undefined, { username: 'walkin', password: 'walk-in has a long one' })).status, 403)

      // Requiring MFA warns an admin who has none that it applies to them too (not saved here).
      await security.getByLabel('Require two-factor sign-in for every user').check()
      await security.getByText('You do not use it yet').waitFor()
      await security.getByLabel('Require two-factor sign-in for every user').uncheck()

      await selfReg.check()
      await security.getByRole('button', { name: 'Save security settings' }).click()
      await security.getByText('Security settings saved.').waitFor()
      assert.deepEqual((await apiCall(base, 'GET', '/api/v1/settings/security', token)).body, { self_registration: true, require_mfa: false })
      assert.equal((await apiCall(base, 'POST', '/api/v1/auth/register', undefined, { username: 'walkin', password: 'walk-in has a long one' })).status, 201)
      await assertAccessible(page, 'the settings page as an admin')
      await screenshot(page, 'settings-admin')

      await page.reload()
      await security.getByLabel('Allow self-registration').waitFor()
      assert.equal(await security.getByLabel('Allow self-registration').isChecked(), true)
      await security.getByLabel('Allow self-registration').uncheck()
      await security.getByRole('button', { name: 'Save security settings' }).click()
      await security.getByText('Security settings saved.').waitFor()
      assert.equal(((await apiCall(base, 'GET', '/api/v1/settings/security', token)).body as { self_registration: boolean }).self_registration, false)
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('a viewer sees no Users or Audit log, gets a 403 page for them, and no security settings', async () => {
    const vera = await createUser(base, token, 'viewer', 'vera')
    const { context, page, problems } = await signedInAs(browser, base, vera)
    try {
      const nav = page.getByRole('navigation', { name: 'Main' })
      assert.equal(await nav.getByRole('link', { name: 'Users' }).count(), 0)
      assert.equal(await nav.getByRole('link', { name: 'Audit log' }).count(), 0)
      for (const [path, name] of [['/users', 'The Users page is for admins'], ['/audit', 'The audit log is for admins']] as const) {
        await page.goto(`${base}${path}`)
        await page.getByRole('heading', { name: 'Access denied' }).waitFor()
        await page.getByRole('heading', { name }).waitFor()
        assert.match((await page.locator('.forbidden-card').textContent()) ?? '', /403.*signed in as vera with the viewer role/s)
      }
      await assertAccessible(page, 'the 403 page')
      await screenshot(page, 'forbidden-viewer')

      await page.goto(`${base}/settings`)
      await page.getByRole('region', { name: 'API tokens', exact: true }).getByText('No API tokens yet').waitFor()
      assert.equal(await page.getByRole('region', { name: 'Security (all users)', exact: true }).count(), 0)
      assert.deepEqual(await page.getByLabel('Token role').locator('option').allTextContents(), ['viewer'])
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('a failing API call shows its code and message, and the page recovers on retry', async () => {
    const { context, page, problems } = await openPage(browser)
    try {
      await adminSignIn(page, base, '/users')
      const body = JSON.stringify({ error: { code: 'INTERNAL', message: 'user store exploded', request_id: 'req-users-1' } })
      await page.route('**/api/v1/users?*', (route) => route.fulfill({ status: 500, contentType: 'application/json', body }))
      await page.route('**/api/v1/api-tokens*', (route) => route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'UNAVAILABLE', message: 'tokens unavailable' } }) }))
      await page.goto(`${base}/users`)
      const panel = page.getByRole('alert').filter({ hasText: 'Could not load users' })
      await panel.waitFor()
      assert.match((await panel.textContent()) ?? '', /INTERNAL.*user store exploded.*req-users-1/s)
      // The page around it still works.
      await page.getByRole('button', { name: 'New user' }).click()
      await page.getByRole('dialog', { name: 'New user' }).getByRole('button', { name: 'Cancel' }).click()
      await page.unroute('**/api/v1/users?*')
      await panel.getByRole('button', { name: 'Try again' }).click()
      await page.locator('tr[data-user="admin"]').waitFor()

      await page.goto(`${base}/settings`)
      await page.getByRole('region', { name: 'API tokens', exact: true }).getByRole('alert').getByText('tokens unavailable').waitFor()
      // The other sections are unaffected.
      await page.getByRole('region', { name: 'Profile', exact: true }).getByRole('button', { name: 'Save profile' }).waitFor()
      await assertClean(page, problems, expectedHttpErrors(500, 503))
    } finally {
      await context.close()
    }
  })

  test('screenshots in dark and at phone width pass the accessibility checks', async () => {
    for (const width of [1280, 390]) {
      const { context, page, problems } = await adminOnUsers(width)
      try {
        const tag = width === 390 ? 'phone' : 'desktop'
        for (const theme of ['dark', 'light'] as const) {
          await useTheme(page, theme)
          await page.goto(`${base}/users`)
          await page.locator('tr[data-user="admin"]').waitFor()
          await assertAccessible(page, `users (${tag}, ${theme})`)
          await screenshot(page, `users-${tag}-${theme}`)
          await page.locator('tr[data-user="olivia"]').getByRole('button', { name: 'olivia' }).click()
          await page.getByRole('dialog', { name: 'olivia' }).waitFor()
          await assertAccessible(page, `user panel (${tag}, ${theme})`)
          await screenshot(page, `users-panel-${tag}-${theme}`)
          await page.keyboard.press('Escape')
          await page.goto(`${base}/settings`)
          await page.getByRole('region', { name: 'Security (all users)', exact: true }).getByLabel('Allow self-registration').waitFor()
          await assertAccessible(page, `settings (${tag}, ${theme})`)
          await screenshot(page, `settings-${tag}-${theme}`)
        }
        // Nothing in the page is wider than its column: tables scroll inside their own box.
        assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= Math.max(window.innerWidth, document.querySelector('.topbar')!.scrollWidth) + 1), 'no horizontal page scroll')
        assert.ok(await page.evaluate(() => { const main = document.getElementById('main')!; return main.scrollWidth <= main.clientWidth + 1 }), 'the content fits its column')
        await assertClean(page, problems)
      } finally {
        await context.close()
      }
    }
  })
})
