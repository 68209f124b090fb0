import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { sql } from 'drizzle-orm'
import type { Browser, Page } from 'playwright-core'
import { SYSTEM_ACTOR } from '../../controller/src/auth/principal.ts'
import { appendAudit } from '../../controller/src/audit/service.ts'
import { adminSignIn, createUser, expectedHttpErrors, signedInAs, useTheme } from './admin-helpers.ts'
import { adminToken, apiCall, assertAccessible, assertClean, launchBrowser, openPage, screenshot, skipUi, startUiController, type UiController } from './harness.ts'

/*
 * The audit log page against a real controller: the actions of a small story (a user created, an
 * API token created and revoked, a refused sign-in) appear with their details, the filters ask the
 * API, the chain is verified — and a row edited directly in the database turns it broken.
 */

const skip = skipUi

interface Entry {
  id: number
  action: string
  outcome: string
  actor: { name: string | null }
  resource: { type: string | null; id: string | null }
  summary: Record<string, unknown>
}

describe('audit log page', { skip }, () => {
  let ui: UiController
  let browser: Browser
  let base: string
  let token: string
  let alice: { id: string; username: string; password: string }

  before(async () => {
    ui = await startUiController()
    base = ui.base
    browser = await launchBrowser()
    token = await adminToken(base)
    // The story the log should tell.
    alice = await createUser(base, token, 'operator', 'alice')
    const created = await apiCall(base, 'POST', '/api/v1/api-tokens', token, { name: 'nightly-backup', role: 'viewer' })
    assert.equal(created.status, 201)
    assert.equal((await apiCall(base, 'DELETE', `/api/v1/api-tokens/${(created.body as { id: string }).id}`, token)).status, 200)
    assert.equal((await apiCall(base, 'POST', '/api/v1/auth/login', undefined, { username: 'alice', password: 'not her password at all' })).status, 401)
  })
  after(async () => {
    await browser?.close()
    await ui?.stop()
  })

  const entries = async (query = '') => ((await apiCall(base, 'GET', `/api/v1/audit?limit=500${query}`, token)).body as { items: Entry[] }).items

  async function openAudit(query = '', width?: number) {
    const opened = await openPage(browser, { width })
    await adminSignIn(opened.page, base, `/audit${query}`)
    await opened.page.getByRole('list', { name: 'Audit entries' }).or(opened.page.getByText(/No entries match|The audit log is empty/)).first().waitFor()
    return opened
  }

  const rows = (page: Page) => page.locator('button.audit-row')
  const rowActions = async (page: Page) => (await page.locator('button.audit-row .audit-action').allTextContents()).map((t) => t.trim())
  const badge = (page: Page) => page.getByTestId('chain-badge')

  test('shows the actions with their outcome, and the chain as verified', async () => {
    const { context, page, problems } = await openAudit()
    try {
      assert.equal(await page.title(), 'Audit log · OpsConductor')
      await page.waitForFunction(() => document.querySelector('[data-testid="chain-badge"]')?.getAttribute('data-status') === 'verified')
      assert.equal(await badge(page).textContent(), 'Verified')
      const stored = await entries()
      assert.match((await page.locator('.chain-status').textContent()) ?? '', new RegExp(`All ${stored.length} entries check out`))

      const shown = await rowActions(page)
      for (const action of ['users.create', 'api_tokens.create', 'api_tokens.revoke', 'auth.login']) assert.ok(shown.includes(action), `${action} is listed: ${shown.join(', ')}`)
      // Newest first, as the API answers.
      assert.deepEqual(shown, stored.map((e) => e.action))
      const refused = rows(page).filter({ hasText: 'failure' })
      assert.match((await refused.first().textContent()) ?? '', /alice.*auth\.login.*failure/s)
      await assertAccessible(page, 'the audit log')
      await screenshot(page, 'audit-list')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('filters by action prefix, outcome, actor, resource and time; the URL keeps them; a refused filter shows by its field', async () => {
    const { context, page, problems } = await openAudit()
    try {
      const filters = page.getByRole('search', { name: 'Filter the audit log' })
      const apply = () => filters.getByRole('button', { name: 'Apply filters' }).click()
      const waitForActions = (expected: string[]) =>
        page.waitForFunction((want) => JSON.stringify([...document.querySelectorAll('button.audit-row .audit-action')].map((e) => e.textContent?.trim())) === JSON.stringify(want), expected)

      await filters.getByLabel('Action').fill('api_tokens.*')
      await apply()
      await waitForActions(['api_tokens.revoke', 'api_tokens.create'])
      assert.equal(new URL(page.url()).searchParams.get('action'), 'api_tokens.*')

      await filters.getByLabel('Action').fill('')
      await filters.getByLabel('Outcome').selectOption('failure')
      await apply()
      await waitForActions((await entries('&outcome=failure')).map((e) => e.action))
      assert.deepEqual(await rowActions(page), ['auth.login'])

      await filters.getByLabel('Outcome').selectOption('')
      await filters.getByLabel('Resource type').fill('user')
      await filters.getByLabel('Resource id').fill(alice.id)
      await apply()
      await waitForActions((await entries(`&resource_type=user&resource_id=${alice.id}`)).map((e) => e.action))
      assert.ok((await rowActions(page)).includes('users.create'))
      await screenshot(page, 'audit-filtered')

      // The URL carries the filters: a reload shows the same list and fills the form again.
      await page.reload()
      await page.getByRole('list', { name: 'Audit entries' }).waitFor()
      assert.equal(await filters.getByLabel('Resource id').inputValue(), alice.id)
      assert.ok((await rowActions(page)).includes('users.create'))

      await filters.getByRole('button', { name: 'Clear filters' }).click()
      await filters.getByLabel('Actor').fill('alice')
      await apply()
      await waitForActions((await entries('&actor=alice')).map((e) => e.action))

      // A window in the future: nothing, said plainly, with a way back.
      await filters.getByRole('button', { name: 'Clear filters' }).click()
      await filters.getByLabel('From').fill('2099-01-01T00:00')
      await apply()
      await page.getByText('No entries match these filters').waitFor()
      await assertAccessible(page, 'the audit log with no match')
      await page.getByRole('button', { name: 'Clear filters' }).last().click()
      await page.getByRole('list', { name: 'Audit entries' }).waitFor()

      // The API refuses a window that ends before it starts: the message is under "To".
      await filters.getByLabel('From').fill('2030-01-02T00:00')
      await filters.getByLabel('To', { exact: true }).fill('2030-01-01T00:00')
      await apply()
      const to = filters.locator('.field.invalid').filter({ has: page.getByLabel('To', { exact: true }) })
      await to.getByText('must be after from').waitFor()
      await page.getByRole('alert').getByText('The controller refused these filters').waitFor()
      await assertAccessible(page, 'the audit filters with a refused value')
      await screenshot(page, 'audit-filter-refused')

      await assertClean(page, problems, expectedHttpErrors(400))
    } finally {
      await context.close()
    }
  })

  test('an entry opens in a panel with its summary as JSON; Escape closes it and focus returns to its row', async () => {
    const { context, page, problems } = await openAudit('?action=users.create')
    try {
      const [created] = await entries('&action=users.create&resource_id=' + alice.id)
      assert.ok(created)
      const rowButton = page.locator(`button.audit-row[data-entry-id="${created.id}"]`)
      await rowButton.click()
      const panel = page.getByRole('dialog', { name: `Audit entry #${created.id}` })
      await panel.waitFor()
      const json = (await panel.getByLabel('Summary as JSON').textContent()) ?? ''
      // Pretty-printed, two spaces per level.
      assert.match(json, /^\{\n {2}"[a-z_]+": /)
      assert.match(json, /\n {2}"username": "alice",?\n/)
      assert.deepEqual(JSON.parse(json), created.summary)
      assert.match((await panel.textContent()) ?? '', new RegExp(`admin.*users\\.create.*${alice.id}`, 's'))
      await assertAccessible(page, 'the audit entry panel')
      await screenshot(page, 'audit-detail')

      await page.keyboard.press('Escape')
      await panel.waitFor({ state: 'detached' })
      assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-entry-id')), String(created.id))

      // "Entries by this actor" filters the log from the panel.
      await rowButton.click()
      await panel.getByRole('button', { name: 'Entries by this actor' }).click()
      await panel.waitFor({ state: 'detached' })
      await page.waitForURL((url) => url.searchParams.get('actor') === 'admin' && !url.searchParams.has('action'))
      assert.equal(await page.getByRole('search').getByLabel('Actor').inputValue(), 'admin')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('a long log is windowed and loads further pages as it scrolls', async () => {
    const { db } = ui.controller.ctx
    for (let i = 0; i < 450; i++) {
      await appendAudit(db, { actor: SYSTEM_ACTOR, action: 'system.load_test', resourceType: 'test', resourceId: `r-${i}`, outcome: 'success', summary: { i } }, new Date())
    }
    const { context, page, problems } = await openAudit('?action=system.load_test')
    try {
      await page.getByText('200 entries loaded; scroll for more').waitFor()
      const inDom = await rows(page).count()
      assert.ok(inDom < 100, `only the rows in view are rendered (${inDom})`)
      const list = page.getByRole('list', { name: 'Audit entries' })
      for (const expected of ['400 entries loaded; scroll for more', '450 entries match']) {
        await list.evaluate((el) => el.scrollTo({ top: el.scrollHeight }))
        await page.getByText(expected, { exact: true }).waitFor()
      }
      assert.equal(await page.getByRole('button', { name: 'Load more entries' }).count(), 0)
      // The last row is the oldest of them.
      await list.evaluate((el) => el.scrollTo({ top: el.scrollHeight }))
      await page.locator('button.audit-row').filter({ hasText: 'test r-0' }).waitFor()
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('failing API calls show their message; the rest of the page keeps working', async () => {
    const { context, page, problems } = await openPage(browser)
    try {
      await page.route('**/api/v1/audit/verify', (route) => route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: { code: 'INTERNAL', message: 'chain walker fell over', request_id: 'req-audit-1' } }) }))
      await adminSignIn(page, base, '/audit')
      const chainError = page.locator('.chain-status').getByRole('alert')
      await chainError.getByText('chain walker fell over').waitFor()
      assert.match((await chainError.textContent()) ?? '', /INTERNAL.*req-audit-1/s)
      await page.getByRole('list', { name: 'Audit entries' }).waitFor()
      await screenshot(page, 'audit-verify-error')
      await page.unroute('**/api/v1/audit/verify')
      await chainError.getByRole('button', { name: 'Try again' }).click()
      await page.waitForFunction(() => document.querySelector('[data-testid="chain-badge"]')?.getAttribute('data-status') === 'verified')

      await page.route('**/api/v1/audit?*', (route) => route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'UNAVAILABLE', message: 'database is restarting' } }) }))
      await page.getByRole('button', { name: 'Refresh' }).click()
      const listError = page.getByRole('alert').filter({ hasText: 'Could not load the audit log' })
      await listError.getByText('database is restarting').waitFor()
      await page.unroute('**/api/v1/audit?*')
      await listError.getByRole('button', { name: 'Try again' }).click()
      await listError.waitFor({ state: 'detached' })
      await page.getByRole('list', { name: 'Audit entries' }).waitFor()
      await assertClean(page, problems, expectedHttpErrors(500, 503))
    } finally {
      await context.close()
    }
  })

  test('an operator gets the 403 page, not the log', async () => {
    const { context, page, problems } = await signedInAs(browser, base, alice, { next: '/audit' })
    try {
      await page.getByRole('heading', { name: 'The audit log is for admins' }).waitFor()
      assert.equal(await page.getByRole('list', { name: 'Audit entries' }).count(), 0)
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('dark and phone layouts pass the accessibility checks', async () => {
    for (const width of [1280, 390]) {
      const { context, page, problems } = await openAudit('', width)
      try {
        const tag = width === 390 ? 'phone' : 'desktop'
        for (const theme of ['dark', 'light'] as const) {
          await useTheme(page, theme)
          await page.waitForFunction(() => document.querySelector('[data-testid="chain-badge"]')?.getAttribute('data-status') === 'verified')
          await assertAccessible(page, `the audit log (${tag}, ${theme})`)
          await screenshot(page, `audit-${tag}-${theme}`)
          await rows(page).first().click()
          await page.getByRole('dialog').waitFor()
          await assertAccessible(page, `the audit entry panel (${tag}, ${theme})`)
          await screenshot(page, `audit-detail-${tag}-${theme}`)
          await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click()
        }
        assert.ok(await page.evaluate(() => { const main = document.getElementById('main')!; return main.scrollWidth <= main.clientWidth + 1 }), 'the content fits its column')
        await assertClean(page, problems)
      } finally {
        await context.close()
      }
    }
  })

  // Last: it breaks the chain for good.
  test('a row edited in the database turns the chain status to broken, naming the entry', async () => {
    const [target] = await entries('&action=api_tokens.create')
    assert.ok(target)
    const { context, page, problems } = await openAudit()
    try {
      await page.waitForFunction(() => document.querySelector('[data-testid="chain-badge"]')?.getAttribute('data-status') === 'verified')
      // Someone with database access rewrites history: the token was an admin one after all.
      await ui.controller.ctx.db.execute(sql`update audit_log set summary = jsonb_set(summary, '{role}', '"admin"') where id = ${target.id}`)

      await page.getByRole('button', { name: 'Verify again' }).click()
      await page.waitForFunction(() => document.querySelector('[data-testid="chain-badge"]')?.getAttribute('data-status') === 'broken')
      assert.equal(await badge(page).textContent(), 'Broken')
      const text = (await page.getByTestId('chain-broken').textContent()) ?? ''
      assert.match(text, new RegExp(`Entry #${target.id} content does not match its hash`))
      assert.match(text, /api_tokens\.create by admin/)
      const before = (await entries()).filter((e) => e.id < target.id).length
      assert.match(text, new RegExp(`${before} entries before it verified`))
      await assertAccessible(page, 'the audit log with a broken chain')
      await screenshot(page, 'audit-chain-broken')

      await page.getByRole('button', { name: `Show entry #${target.id}` }).click()
      const panel = page.getByRole('dialog', { name: `Audit entry #${target.id}` })
      await panel.waitFor()
      assert.match((await panel.getByLabel('Summary as JSON').textContent()) ?? '', /"role": "admin"/)
      await screenshot(page, 'audit-chain-broken-entry')
      await page.keyboard.press('Escape')
      await panel.waitFor({ state: 'detached' })
      await useTheme(page, 'dark')
      await assertAccessible(page, 'the audit log with a broken chain (dark)')
      await screenshot(page, 'audit-chain-broken-dark')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })
})
