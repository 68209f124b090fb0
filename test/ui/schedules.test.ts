import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { scheduleFire } from '../../controller/src/scheduler/scheduler.sql.ts'
import { assertAccessible, assertClean, screenshot, skipUi } from './harness.ts'
import { assertNoPageOverflow, setUp, signedIn, until, type Setup } from './schedules-helpers.ts'

// Schedules and maintenance windows in the console, in Chromium against a real controller: the
// cron builder and the server's next-fires preview in the schedule's zone, the server's verdict
// on a bad expression shown by its field, fire history, enable/disable, the maintenance calendar,
// read-only viewers, error states, phone width and dark theme.

let s: Setup
let jobId: string

before(async () => {
  if (skipUi) return
  s = await setUp()
  const job = await s.api<{ id: string }>(
    'POST',
    '/api/v1/jobs',
    {
      name: 'Nightly backup',
      parameters: [
        { name: 'svc', type: 'string', required: true, description: 'Service to back up' },
        { name: 'pw', type: 'secret' },
      ],
      steps: [{ type: 'wait', seconds: 0.1 }],
    },
    201,
  )
  jobId = job.id
})
after(async () => {
  await s?.stop()
})

interface PreviewFire {
  at_utc: string
  at_local: string
  offset: string
}

/** What the server says the expression's next fires are (the same endpoint the page asks). */
async function serverPreview(cron: string, tz: string, count = 10): Promise<PreviewFire[]> {
  const body = await s.api<{ fires: PreviewFire[] }>('GET', `/api/v1/schedules/preview?${new URLSearchParams({ cron, tz, count: String(count) })}`, undefined, 200)
  return body.fires
}

describe('schedules', { skip: skipUi }, () => {
  test('the cron builder makes the expression; the next fires shown are the server’s, in the chosen zone; saving stores it', async () => {
    const { context, page, problems } = await signedIn(s)
    try {
      await page.goto(`${s.ui.base}/schedules`)
      await page.getByText('No schedules yet').waitFor()
      await assertAccessible(page, 'schedules, empty')
      await screenshot(page, 'schedules-empty')
      await page.getByRole('link', { name: 'New schedule' }).first().click()
      await page.getByRole('heading', { name: 'New schedule' }).waitFor()

      await page.getByLabel('Name', { exact: true }).fill('Backup Mon+Wed')
      await page.getByLabel('Job', { exact: true }).selectOption({ label: 'Nightly backup' })
      await page.getByLabel('svc (required)').fill('postgres')
      // Weekly on Monday and Wednesday at 02:30.
      await page.getByLabel('Repeat', { exact: true }).selectOption({ label: 'Weekly on days' })
      await page.getByLabel('Time of day').fill('02:30')
      for (const day of ['Tuesday', 'Thursday', 'Friday']) await page.getByLabel(day, { exact: true }).uncheck()
      assert.equal(await page.getByLabel('Cron expression').inputValue(), '30 2 * * 1,3')
      await page.getByLabel('Time zone', { exact: true }).fill('America/New_York')

      const expected = await serverPreview('30 2 * * 1,3', 'America/New_York')
      const list = page.getByRole('list', { name: 'Next fires' })
      await until(page, 'the preview for America/New_York', async () => (await list.locator('li').first().getAttribute('data-at').catch(() => null)) === expected[0]!.at_utc)
      await page.getByRole('heading', { name: /Next fires · America\/New_York/ }).waitFor()
      const shown = await list.locator('li').evaluateAll((items) => items.map((li) => ({ at: li.getAttribute('data-at'), text: li.textContent ?? '' })))
      assert.equal(shown.length, expected.length)
      shown.forEach((row, i) => {
        const f = expected[i]!
        assert.equal(row.at, f.at_utc, `fire ${i}: the instant the server computed`)
        // Wall-clock date, time and offset in New York, exactly as the server gave them.
        assert.ok(row.text.includes(f.at_local.slice(0, 10)), `fire ${i} shows ${f.at_local.slice(0, 10)}: ${row.text}`)
        assert.ok(row.text.includes(f.at_local.slice(11, 16)), `fire ${i} shows ${f.at_local.slice(11, 16)}: ${row.text}`)
        assert.ok(row.text.includes(`UTC${f.offset}`), `fire ${i} shows UTC${f.offset}: ${row.text}`)
        assert.ok(['Mon', 'Wed'].includes(row.text.trim().slice(0, 3)), `fire ${i} is a Monday or Wednesday: ${row.text}`)
      })
      await assertAccessible(page, 'new schedule form with preview')
      await screenshot(page, 'schedules-new-weekly')

      await page.getByRole('button', { name: 'Save schedule' }).click()
      await page.waitForURL(/\/schedules\/[0-9a-f-]{36}$/)
      const id = new URL(page.url()).pathname.split('/').pop()!
      const stored = await s.api<any>('GET', `/api/v1/schedules/${id}`, undefined, 200)
      assert.equal(stored.cron, '30 2 * * 1,3')
      assert.equal(stored.timezone, 'America/New_York')
      assert.deepEqual(stored.parameters, { svc: 'postgres' })
      assert.equal(stored.job_id, jobId)
      assert.equal(stored.next_fire_at, (await serverPreview('30 2 * * 1,3', 'America/New_York', 1))[0]!.at_utc)
      // The saved schedule opens in the builder where it was left.
      await page.getByRole('heading', { name: 'Backup Mon+Wed' }).waitFor()
      assert.equal(await page.getByLabel('Repeat', { exact: true }).inputValue(), 'weekly')
      assert.equal(await page.getByLabel('Monday', { exact: true }).isChecked(), true)
      assert.equal(await page.getByLabel('Tuesday', { exact: true }).isChecked(), false)
      await page.getByRole('table', { name: 'Fire history' }).or(page.getByText('No fires yet')).waitFor()

      // Editing: every 15 minutes in Berlin, saved through PUT.
      await page.getByLabel('Repeat', { exact: true }).selectOption({ label: 'Every N minutes' })
      await page.getByLabel('Every (minutes)').fill('15')
      await page.getByLabel('Time zone', { exact: true }).fill('Europe/Berlin')
      const berlin = await serverPreview('*/15 * * * *', 'Europe/Berlin')
      await until(page, 'the Berlin preview', async () => (await list.locator('li').first().getAttribute('data-at').catch(() => null)) === berlin[0]!.at_utc || (await list.locator('li').nth(1).getAttribute('data-at').catch(() => null)) === berlin[0]!.at_utc)
      await page.getByRole('button', { name: 'Save schedule' }).click()
      await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor()
      const edited = await s.api<any>('GET', `/api/v1/schedules/${id}`, undefined, 200)
      assert.equal(edited.cron, '*/15 * * * *')
      assert.equal(edited.timezone, 'Europe/Berlin')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('a bad cron expression or zone shows the server’s own message by its field, live and on save', async () => {
    const { context, page, problems } = await signedIn(s)
    try {
      await page.goto(`${s.ui.base}/schedules/new`)
      await page.getByLabel('Name', { exact: true }).fill('Broken')
      await page.getByLabel('Job', { exact: true }).selectOption({ label: 'Nightly backup' })
      await page.getByLabel('svc (required)').fill('x')
      await page.getByLabel('Time zone', { exact: true }).fill('UTC')
      await page.getByLabel('Cron expression').fill('61 * * * *')
      assert.equal(await page.getByLabel('Repeat', { exact: true }).inputValue(), 'custom', 'a hand-written expression the builder does not know is custom')
      const bad = await s.api<any>('GET', `/api/v1/schedules/preview?cron=${encodeURIComponent('61 * * * *')}&tz=UTC`, undefined, 400)
      const message: string = bad.error.details.find((d: any) => d.path === 'cron').message
      const cronField = page.locator('.field', { has: page.getByLabel('Cron expression') })
      await cronField.locator('.field-error').filter({ hasText: message }).waitFor()
      assert.equal(await page.getByLabel('Cron expression').getAttribute('aria-invalid'), 'true')
      await screenshot(page, 'schedules-bad-cron')
      await assertAccessible(page, 'a bad cron expression')

      // Saving anyway: the create's 400 names the same field.
      await page.getByRole('button', { name: 'Save schedule' }).click()
      await page.getByRole('alert').filter({ hasText: 'Could not save the schedule' }).waitFor()
      assert.match((await cronField.locator('.field-error').textContent()) ?? '', new RegExp(message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      assert.equal(new URL(page.url()).pathname, '/schedules/new', 'still on the form')

      // A zone Intl does not know: the server's message under the zone.
      await page.getByLabel('Cron expression').fill('0 3 * * *')
      await page.getByLabel('Time zone', { exact: true }).fill('Mars/Olympus_Mons')
      const zoneBad = await s.api<any>('GET', `/api/v1/schedules/preview?cron=${encodeURIComponent('0 3 * * *')}&tz=Mars/Olympus_Mons`, undefined, 400)
      const zoneMessage: string = zoneBad.error.details.find((d: any) => d.path === 'tz').message
      await page.locator('.field', { has: page.getByLabel('Time zone', { exact: true }) }).locator('.field-error').filter({ hasText: zoneMessage }).waitFor()
      assert.equal(await cronField.locator('.field-error').count(), 0, 'the cron is fine now')
      // The failed save's 400 was logged by the browser; nothing else.
      await assertClean(page, problems, (t) => t.includes('status of 400'))
    } finally {
      await context.close()
    }
  })

  test('the list shows the last fire and next fire; a switch disables; the history lists every occurrence', async () => {
    const created = await s.api<any>('POST', '/api/v1/schedules', { name: 'Hourly sync', job_id: jobId, cron: '5 * * * *', timezone: 'Asia/Tokyo', parameters: { svc: 'sync', pw: 'hunter22' } }, 201)
    const { ctx } = s.ui.controller
    const at = (h: number) => new Date(Date.UTC(2026, 0, 10, h, 5))
    await ctx.db.insert(scheduleFire).values([
      { scheduleId: created.id, fireAt: at(1), status: 'fired', lagMs: 40 },
      { scheduleId: created.id, fireAt: at(2), status: 'skipped', reason: 'maintenance', detail: { window_name: 'Patch night' } },
      { scheduleId: created.id, fireAt: at(3), status: 'missed', reason: 'misfire' },
    ])
    const { context, page, problems } = await signedIn(s)
    try {
      await page.goto(`${s.ui.base}/schedules`)
      const row = page.locator('tr[data-schedule="Hourly sync"]')
      await row.waitFor()
      assert.match((await row.textContent()) ?? '', /missed/, 'the latest occurrence was missed')
      assert.match((await row.textContent()) ?? '', /Every hour at :05/)
      assert.match((await row.textContent()) ?? '', /GMT\+9/, 'the next fire in the schedule’s zone')
      await assertAccessible(page, 'schedules list')
      await screenshot(page, 'schedules-list')
      const toggle = page.getByRole('switch', { name: 'Enabled: Hourly sync' })
      assert.equal(await toggle.getAttribute('aria-checked'), 'true')
      await toggle.click()
      await until(page, 'the switch to turn off', async () => (await toggle.getAttribute('aria-checked')) === 'false')
      assert.equal((await s.api<any>('GET', `/api/v1/schedules/${created.id}`)).enabled, false)

      await page.getByRole('link', { name: 'Hourly sync' }).click()
      const history = page.getByRole('table', { name: 'Fire history' })
      await history.waitFor()
      const rows = await history.locator('tbody tr').allTextContents()
      assert.equal(rows.length, 3)
      assert.match(rows[0]!, /Missed/)
      assert.match(rows[1]!, /Skipped.*maintenance.*Patch night/)
      assert.match(rows[2]!, /Fired/)
      // Filter by status.
      await page.getByLabel('Status', { exact: true }).selectOption('skipped')
      await until(page, 'the filtered history', async () => (await history.locator('tbody tr').count()) === 1)
      // The secret parameter is stored, not shown.
      assert.equal(await page.getByLabel('pw').inputValue(), '')
      assert.equal(await page.getByLabel('pw').getAttribute('placeholder'), 'Stored — type to replace')
      // Enable again from the page header; saving the form keeps the stored secret.
      await page.getByRole('button', { name: 'Enable', exact: true }).click()
      await page.getByRole('button', { name: 'Disable', exact: true }).waitFor()
      await page.getByRole('button', { name: 'Save schedule' }).click()
      await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor()
      const after = await s.api<any>('GET', `/api/v1/schedules/${created.id}`)
      assert.equal(after.enabled, true)
      assert.deepEqual(after.parameters, { svc: 'sync', pw: '****' })
      await assertAccessible(page, 'schedule detail with history')
      await screenshot(page, 'schedules-detail')

      // Delete, through the confirmation dialog (Escape cancels it first).
      await page.getByRole('button', { name: 'Delete', exact: true }).click()
      const dialog = page.getByRole('alertdialog', { name: /Delete schedule/ })
      await dialog.waitFor()
      await assertAccessible(page, 'delete dialog')
      await page.keyboard.press('Escape')
      await dialog.waitFor({ state: 'hidden' })
      assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Delete', 'focus returns to the button that opened it')
      await page.getByRole('button', { name: 'Delete', exact: true }).click()
      await dialog.getByRole('button', { name: 'Delete schedule' }).click()
      await page.waitForURL(/\/schedules$/)
      assert.equal((await s.api<any>('GET', `/api/v1/schedules/${created.id}`)).error?.code, 'NOT_FOUND')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('a maintenance window made in the form appears on the calendar (desktop, phone, dark)', async () => {
    await s.api('POST', '/api/v1/schedules', { name: 'Phone check', job_id: jobId, cron: '0 6 * * 1-5', timezone: 'Europe/Berlin', parameters: { svc: 'web' } }, 201)
    const { context, page, problems } = await signedIn(s)
    try {
      await page.goto(`${s.ui.base}/schedules/maintenance`)
      await page.getByRole('heading', { name: 'Maintenance windows' }).waitFor()
      await page.getByText('No maintenance windows').waitFor()
      await page.getByRole('link', { name: 'New window' }).click()
      await page.getByRole('heading', { name: 'New maintenance window' }).waitFor()
      // A one-off window on the 10th of this month, 22:00 to 02:00 the next day, in Berlin.
      const now = new Date()
      const month = `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}`
      await page.getByLabel('Name', { exact: true }).fill('DB patching')
      await page.getByLabel('Time zone', { exact: true }).fill('Europe/Berlin')
      await page.getByLabel('Starts').fill(`${month}-10T22:00`)
      await page.getByLabel('Ends').fill(`${month}-11T02:00`)
      await page.getByLabel('While open').selectOption('defer')
      await assertAccessible(page, 'new maintenance window')
      await screenshot(page, 'maintenance-new')
      await page.getByRole('button', { name: 'Save window' }).click()
      await page.waitForURL(/\/schedules\/maintenance$/)
      const stored = (await s.api<any>('GET', '/api/v1/maintenance-windows')).items.find((w: any) => w.name === 'DB patching')
      assert.equal(stored.timezone, 'Europe/Berlin')
      assert.equal(stored.action, 'defer')
      assert.equal(new Date(stored.ends_at).getTime() - new Date(stored.starts_at).getTime(), 4 * 3600_000, 'four hours, read in Berlin')

      // Also a weekly one, through the API, to see several kinds together.
      await s.api('POST', '/api/v1/maintenance-windows', { name: 'Sunday reboot', kind: 'weekly', timezone: 'Europe/Berlin', ranges: [{ days: ['sun'], start: '03:00', end: '04:00' }], applies_to: { selector: 'tag:role=web' } }, 201)
      await page.reload()
      // Shown in Berlin time: the window is drawn on the 10th (22:00–24:00) and the 11th (00:00–02:00).
      await page.getByLabel('Show times in').fill('Europe/Berlin')
      const day10 = page.locator(`td.day[data-date="${month}-10"]`)
      const day11 = page.locator(`td.day[data-date="${month}-11"]`)
      await day10.getByRole('link', { name: /22:00–24:00 DB patching/ }).waitFor()
      await day11.getByRole('link', { name: /00:00–02:00 DB patching/ }).waitFor()
      assert.ok((await page.locator('td.day').getByRole('link', { name: /Sunday reboot/ }).count()) >= 4, 'every Sunday of the grid')
      const table = page.getByRole('table', { name: 'Maintenance windows' })
      assert.match((await table.locator('tr[data-window="Sunday reboot"]').textContent()) ?? '', /Sun 03:00–04:00/)
      await assertAccessible(page, 'maintenance calendar')
      await screenshot(page, 'maintenance-calendar')
      // Next month, and back.
      await page.getByRole('button', { name: 'Next', exact: true }).click()
      await until(page, 'next month', async () => (await day10.count()) === 0 || !(await day10.getByRole('link', { name: /DB patching/ }).count()))
      await page.getByRole('button', { name: 'Today' }).click()
      await day10.getByRole('link', { name: /DB patching/ }).waitFor()
      // The chip opens the window.
      await day10.getByRole('link', { name: /DB patching/ }).click()
      await page.getByRole('heading', { name: 'DB patching' }).waitFor()
      assert.equal(await page.getByLabel('Starts').inputValue(), `${month}-10T22:00`, 'the wall time in the window’s zone')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
    // A phone: the grid becomes an agenda; dark theme keeps contrast.
    const phone = await signedIn(s, { width: 390, height: 844, dark: true })
    try {
      await phone.page.goto(`${s.ui.base}/schedules/maintenance`)
      await phone.page.locator('.agenda').getByRole('link', { name: /DB patching/ }).first().waitFor()
      await assertNoPageOverflow(phone.page, 'maintenance at 390 px')
      await assertAccessible(phone.page, 'maintenance, phone, dark')
      await screenshot(phone.page, 'maintenance-phone-dark')
      await phone.page.goto(`${s.ui.base}/schedules`)
      await phone.page.getByRole('table', { name: 'Schedules' }).waitFor()
      await assertNoPageOverflow(phone.page, 'schedules at 390 px')
      await assertAccessible(phone.page, 'schedules, phone, dark')
      await screenshot(phone.page, 'schedules-list-phone-dark')
      await phone.page.goto(`${s.ui.base}/schedules/new`)
      await phone.page.getByLabel('Cron expression').waitFor()
      await phone.page.getByRole('list', { name: 'Next fires' }).waitFor()
      await assertNoPageOverflow(phone.page, 'new schedule at 390 px')
      await assertAccessible(phone.page, 'new schedule, phone, dark')
      await screenshot(phone.page, 'schedules-new-phone-dark')
      await assertClean(phone.page, phone.problems)
    } finally {
      await phone.context.close()
    }
    const dark = await signedIn(s, { dark: true })
    try {
      await dark.page.goto(`${s.ui.base}/schedules/maintenance`)
      await dark.page.locator('td.day').getByRole('link', { name: /DB patching/ }).first().waitFor()
      await assertAccessible(dark.page, 'maintenance calendar, dark')
      await screenshot(dark.page, 'maintenance-calendar-dark')
      await dark.page.goto(`${s.ui.base}/schedules/new`)
      await dark.page.getByRole('list', { name: 'Next fires' }).waitFor()
      await assertAccessible(dark.page, 'new schedule, dark')
      await screenshot(dark.page, 'schedules-new-dark')
      await assertClean(dark.page, dark.problems)
    } finally {
      await dark.context.close()
    }
  })

  test('a viewer reads schedules and windows but sees no write controls', async () => {
    const sched = await s.api<any>('POST', '/api/v1/schedules', { name: 'Viewer can see', job_id: jobId, cron: '0 4 * * *', parameters: { svc: 'a' } }, 201)
    const { context, page, problems } = await signedIn(s, { as: 'viewer' })
    try {
      await page.goto(`${s.ui.base}/schedules`)
      await page.locator('tr[data-schedule="Viewer can see"]').waitFor()
      assert.equal(await page.getByRole('link', { name: 'New schedule' }).count(), 0)
      assert.equal(await page.getByRole('switch').count(), 0, 'no enable switches')
      await page.goto(`${s.ui.base}/schedules/${sched.id}`)
      await page.getByRole('heading', { name: 'Viewer can see' }).waitFor()
      for (const name of ['Save schedule', 'Delete', 'Disable', 'Enable']) assert.equal(await page.getByRole('button', { name, exact: true }).count(), 0, `no ${name} button`)
      assert.equal(await page.getByLabel('Cron expression').isDisabled(), true, 'the form is read-only')
      await page.getByRole('list', { name: 'Next fires' }).waitFor()
      await assertAccessible(page, 'schedule, viewer')
      await screenshot(page, 'schedules-viewer')
      await page.goto(`${s.ui.base}/schedules/maintenance`)
      await page.getByRole('heading', { name: 'Maintenance windows' }).waitFor()
      assert.equal(await page.getByRole('link', { name: 'New window' }).count(), 0)
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('an API failure shows the error with its request id, and the page recovers on retry', async () => {
    const { context, page, problems } = await signedIn(s)
    try {
      let fail = true
      await page.route('**/api/v1/schedules?*', (route) =>
        fail
          ? route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: { code: 'INTERNAL', message: 'database on fire', request_id: 'req-123' } }) })
          : route.continue(),
      )
      await page.goto(`${s.ui.base}/schedules`)
      const alert = page.getByRole('alert').filter({ hasText: 'Could not load schedules' })
      await alert.waitFor()
      assert.match((await alert.textContent()) ?? '', /INTERNAL.*database on fire.*req-123/s)
      await assertAccessible(page, 'schedules error')
      await screenshot(page, 'schedules-error')
      fail = false
      await alert.getByRole('button', { name: 'Try again' }).click()
      await page.getByRole('table', { name: 'Schedules' }).waitFor()
      // A 403 on a write (a role changed meanwhile) shows the API's message and keeps the page.
      await page.route('**/api/v1/schedules/*', (route) =>
        route.request().method() === 'PUT' ? route.fulfill({ status: 403, contentType: 'application/json', body: JSON.stringify({ error: { code: 'FORBIDDEN', message: 'needs the operator role' } }) }) : route.continue(),
      )
      await page.getByRole('switch').first().click()
      await page.getByRole('alert').filter({ hasText: 'needs the operator role' }).waitFor()
      await page.getByRole('table', { name: 'Schedules' }).waitFor()
      await assertClean(page, problems, (t) => /status of (500|403)/.test(t))
    } finally {
      await context.close()
    }
  })
})
