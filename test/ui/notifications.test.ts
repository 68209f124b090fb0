import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { HttpReceiver, startSmtpReceiver } from '../harness/receivers.ts'
import { assertAccessible, assertClean, screenshot, skipUi } from './harness.ts'
import { assertNoPageOverflow, setUp, signedIn, until, type Setup } from './schedules-helpers.ts'

// Notifications in the console, in Chromium against a real controller and real HTTP receivers on
// loopback: a webhook channel tested from the page (the receiver's own answer shown), a rule whose
// template preview the server renders for a real failed run, personal quiet hours, a dead letter
// retried from the history, the status card, read-only viewers, errors, phone width and dark theme.

let s: Setup
let receiver: HttpReceiver
let failingJobId: string
let failedRunId: string

async function runToEnd(jobId: string): Promise<string> {
  const started = await s.api<{ run_id: string }>('POST', `/api/v1/jobs/${jobId}/run`, {}, 202)
  const deadline = Date.now() + 60_000
  for (;;) {
    const run = await s.api<{ status: string }>('GET', `/api/v1/runs/${started.run_id}`)
    if (!['queued', 'running'].includes(run.status)) return started.run_id
    assert.ok(Date.now() < deadline, `run ${started.run_id} to end`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

before(async () => {
  if (skipUi) return
  // One attempt, quickly: a refused delivery becomes a dead letter at once.
  s = await setUp({ OPSC_NOTIFY_MAX_ATTEMPTS: '1', OPSC_NOTIFY_BACKOFF_BASE_MS: '100', OPSC_NOTIFY_BACKOFF_CAP_MS: '200' })
  receiver = await HttpReceiver.up()
  receiver.respond = () => ({ status: 202, body: 'accepted by the loopback receiver #42' })
  // A job that fails without any agent: its one HTTP step asks a port nothing listens on.
  const closed = await HttpReceiver.down()
  const job = await s.api<{ id: string }>('POST', '/api/v1/jobs', { name: 'Export orders', steps: [{ id: 'export', type: 'http.get', url: `${closed.url}/export` }] }, 201)
  failingJobId = job.id
  failedRunId = await runToEnd(failingJobId)
  assert.equal((await s.api<{ status: string }>('GET', `/api/v1/runs/${failedRunId}`)).status, 'failed')
})
after(async () => {
  await receiver?.down()
  await s?.stop()
})

describe('notifications', { skip: skipUi }, () => {
  test('a webhook channel made in the form: Send test reaches the loopback receiver and shows its answer; the URL is never shown', async () => {
    const { context, page, problems } = await signedIn(s, { path: '/notifications/channels' })
    try {
      await page.getByText('No channels yet').waitFor()
      await page.getByRole('link', { name: 'New channel' }).first().click()
      await page.getByRole('heading', { name: 'New channel' }).waitFor()
      await page.getByLabel('Type', { exact: true }).selectOption('webhook')
      await page.getByLabel('Name', { exact: true }).fill('Ops hook')
      // Saving without a URL: the server's 400 by the URL field.
      await page.getByRole('button', { name: 'Save channel' }).click()
      const urlField = page.locator('.field', { has: page.getByLabel('URL', { exact: true }) })
      await urlField.locator('.field-error').waitFor()
      assert.match((await urlField.locator('.field-error').textContent()) ?? '', /required/)
      await assertAccessible(page, 'new channel with an error')
      await screenshot(page, 'notifications-channel-new-error')

      await page.getByLabel('URL', { exact: true }).fill(`${receiver.url}/hooks/T0KEN-abc`)
      await page.getByLabel('HMAC signing secret').fill('a signing secret of 16+ chars')
      await page.getByRole('button', { name: 'Add header', exact: true }).click()
      await page.getByLabel('Header 1 name').fill('X-Team')
      await page.getByLabel('Header 1 value').fill('ops')
      await page.getByRole('button', { name: 'Save channel' }).click()
      await page.waitForURL(/\/notifications\/channels\/[0-9a-f-]{36}$/)
      const id = new URL(page.url()).pathname.split('/').pop()!
      const stored = await s.api<any>('GET', `/api/v1/notification-channels/${id}`, undefined, 200)
      assert.deepEqual(stored.secret_fields, ['hmac_secret', 'url'])
      assert.deepEqual(stored.config.headers, { 'X-Team': 'ops' })
      assert.equal(await page.getByLabel('URL', { exact: true }).inputValue(), '', 'a stored secret is not shown')
      assert.equal(await page.getByLabel('URL', { exact: true }).getAttribute('placeholder'), 'Set — type to replace')

      await page.getByRole('button', { name: 'Send test' }).click()
      const result = page.getByRole('status', { name: 'Test of Ops hook' })
      await result.waitFor()
      assert.match((await result.textContent()) ?? '', /Delivered/)
      assert.match((await result.textContent()) ?? '', /HTTP 202/)
      assert.equal(await result.getByTestId('receiver-answer').textContent(), 'accepted by the loopback receiver #42')
      assert.equal(receiver.received.length, 1)
      const req = receiver.received[0]!
      assert.equal(req.url, '/hooks/T0KEN-abc')
      assert.equal(req.headers['x-team'], 'ops')
      assert.match(String(req.headers['x-opsconductor-signature']), /^sha256=[0-9a-f]{64}$/)
      assert.match(req.body, /notification\.test/)
      assert.ok(!(await page.content()).includes('T0KEN-abc'), 'the URL (a secret) is nowhere in the page')
      await assertAccessible(page, 'channel with a test result')
      await screenshot(page, 'notifications-channel-tested')

      // The list tests in place too.
      await page.getByRole('link', { name: 'Back' }).click()
      await page.getByRole('table', { name: 'Channels' }).waitFor()
      await page.getByRole('button', { name: 'Test Ops hook' }).click()
      await page.getByRole('status', { name: 'Test of Ops hook' }).waitFor()
      assert.equal(receiver.received.length, 2)
      await assertAccessible(page, 'channels page')
      await screenshot(page, 'notifications-channels')
      // The 400 of the first save is the only failure the browser logged.
      await assertClean(page, problems, (t) => t.includes('status of 400'))
    } finally {
      await context.close()
    }
  })

  test('SMTP settings: saved with a write-only password; the test email reaches a real SMTP server and its answer is shown', async () => {
    const smtp = await startSmtpReceiver({ username: 'mailer', password: 'smtp pass 9Xq' })
    const { context, page, problems } = await signedIn(s, { path: '/notifications/channels' })
    try {
      const card = page.getByRole('region', { name: 'Email (SMTP) server' })
      await card.getByLabel('SMTP host').waitFor()
      assert.equal(await card.getByRole('button', { name: 'Send test email' }).isDisabled(), true, 'nothing to test before it is configured')
      await card.getByLabel('SMTP host').fill('127.0.0.1')
      await card.getByLabel('Port').fill(String(smtp.port))
      await card.getByLabel('Security').selectOption('starttls')
      await card.getByLabel('Username').fill('mailer')
      await card.getByLabel('Password', { exact: true }).fill('smtp pass 9Xq')
      await card.getByLabel('From address').fill('not an address')
      await card.getByLabel('CA certificate (PEM)').fill(smtp.ca)
      await card.getByRole('button', { name: 'Save SMTP settings' }).click()
      // The server's verdict on the address, by its field.
      await card.locator('.field', { has: page.getByLabel('From address') }).locator('.field-error').waitFor()
      await card.getByLabel('From address').fill('opsconductor@example.test')
      await card.getByRole('button', { name: 'Save SMTP settings' }).click()
      await card.getByRole('status').filter({ hasText: 'Saved' }).waitFor()
      const stored = await s.api<any>('GET', '/api/v1/notification/smtp/settings', undefined, 200)
      assert.equal(stored.has_password, true)
      assert.equal(stored.port, smtp.port)
      assert.equal(await card.getByLabel('Password', { exact: true }).inputValue(), '', 'the password is not shown again')
      assert.equal(await card.getByLabel('Password', { exact: true }).getAttribute('placeholder'), 'Set — type to replace')
      await card.getByLabel('Send a test email to').fill('oncall@example.test')
      await card.getByRole('button', { name: 'Send test email' }).click()
      const result = page.getByRole('status', { name: 'SMTP test' })
      await result.waitFor()
      assert.match((await result.textContent()) ?? '', /Delivered/)
      assert.match((await result.getByTestId('receiver-answer').textContent()) ?? '', /^250/)
      assert.equal(smtp.mails.length, 1)
      assert.deepEqual(smtp.mails[0]!.to, ['oncall@example.test'])
      assert.equal(smtp.mails[0]!.user, 'mailer')
      assert.ok(!(await page.content()).includes('smtp pass 9Xq'), 'the password is nowhere in the page')
      await assertAccessible(page, 'SMTP settings tested')
      await screenshot(page, 'notifications-smtp')
      await assertClean(page, problems, (t) => t.includes('status of 400'))
    } finally {
      await context.close()
      await smtp.close()
    }
  })

  test('a rule: its template is previewed by the server for a real failed run; a bad template shows the server’s message; saving stores it', async () => {
    const { context, page, problems } = await signedIn(s, { path: '/notifications/rules' })
    try {
      await page.getByText('No rules yet').waitFor()
      await page.getByRole('link', { name: 'New rule' }).click()
      await page.getByRole('heading', { name: 'New rule' }).waitFor()
      await page.getByLabel('Name', { exact: true }).fill('Export failures')
      assert.equal(await page.getByLabel('Run failed (run.failed)').isChecked(), true, 'run.failed is the default event')
      await page.getByLabel('Run timed out (run.timed_out)').check()
      await page.getByLabel('Only these jobs').selectOption({ label: 'Export orders' })
      await page.getByLabel('Ops hook (Webhook)').check()
      await page.getByLabel('Critical', { exact: true }).check()
      const subject = '[{{ severity }}] {{ job_name }} is {{ status }}'
      const body = 'Failed targets: {{ failed_targets | default "none" }}\nRun: {{ run_id }}'
      await page.getByLabel('Subject template').fill(subject)
      await page.getByLabel('Body template').fill(body)

      // The run picker offers the failed run; the preview is the server's rendering of it.
      assert.equal(await page.getByLabel('Run to preview with').inputValue(), failedRunId)
      await page.getByRole('button', { name: 'Render preview' }).click()
      const expected = await s.api<any>('POST', '/api/v1/notification-rules/preview', { run_id: failedRunId, template: { subject, body } }, 200)
      await page.getByTestId('preview-subject').filter({ hasText: expected.subject }).waitFor()
      assert.equal(await page.getByTestId('preview-subject').textContent(), expected.subject)
      assert.match(expected.subject, /Export orders is failed/)
      assert.equal((await page.getByTestId('preview-text').textContent())?.trim(), expected.text.trim())
      assert.ok(expected.text.includes(failedRunId))
      await assertAccessible(page, 'rule form with a preview')
      await screenshot(page, 'notifications-rule-preview')

      // A template naming a field that does not exist: the server's message under the body.
      await page.getByLabel('Body template').fill('{{ no_such_field }}')
      await page.getByRole('button', { name: 'Render preview' }).click()
      const bad = await s.api<any>('POST', '/api/v1/notification-rules/preview', { run_id: failedRunId, template: { subject, body: '{{ no_such_field }}' } }, 400)
      const message: string = bad.error.details.find((d: any) => d.path === 'template.body').message
      const bodyField = page.locator('.field', { has: page.getByLabel('Body template') })
      await bodyField.locator('.field-error').filter({ hasText: message }).waitFor()
      await page.getByLabel('Body template').fill(body)

      // Escalation to a user, then save.
      await page.getByLabel('Escalate a failure no success follows').check()
      await page.getByLabel('Escalate after (minutes)').fill('45')
      await page.getByRole('group', { name: 'Escalate to users' }).getByLabel(/vic-viewer/).check()
      await page.getByRole('button', { name: 'Save rule' }).click()
      await page.waitForURL(/\/notifications\/rules\/[0-9a-f-]{36}$/)
      const id = new URL(page.url()).pathname.split('/').pop()!
      const rule = await s.api<any>('GET', `/api/v1/notification-rules/${id}`, undefined, 200)
      assert.deepEqual(rule.events.sort(), ['run.failed', 'run.timed_out'])
      assert.deepEqual(rule.conditions, { job_ids: [failingJobId] })
      assert.equal(rule.critical, true)
      assert.deepEqual(rule.template, { subject, body })
      assert.deepEqual(rule.escalation, { after_sec: 2700, channel_ids: [], user_ids: [s.viewerId] })
      const channels = (await s.api<any>('GET', '/api/v1/notification-channels/directory')).items
      assert.deepEqual(rule.channel_ids, [channels.find((c: any) => c.name === 'Ops hook').id])
      await page.getByRole('link', { name: 'Rules', exact: true }).click()
      await page.locator('tr[data-rule="Export failures"]').waitFor()
      assert.match((await page.locator('tr[data-rule="Export failures"]').textContent()) ?? '', /Ops hook.*after 45 min.*critical/s)
      await screenshot(page, 'notifications-rules')
      await assertAccessible(page, 'rules list')
      await assertClean(page, problems, (t) => t.includes('status of 400'))
    } finally {
      await context.close()
    }
  })

  test('personal quiet hours and digest are saved for the signed-in user and read back through the API', async () => {
    const { context, page, problems } = await signedIn(s, { as: 'viewer', path: '/notifications/preferences' })
    try {
      await page.getByRole('heading', { name: 'My notification preferences' }).waitFor()
      await page.getByText('You have not changed these yet').waitFor()
      await page.getByLabel('Quiet hours', { exact: true }).check()
      await page.getByLabel('Quiet from').fill('22:30')
      await page.getByLabel('Quiet until').fill('06:15')
      await page.getByLabel('My time zone').fill('Europe/Berlin')
      await page.getByLabel('Batch messages into a digest').check()
      await page.getByLabel('Send a digest every (minutes)').fill('30')
      await page.getByLabel('Only these events').check()
      await page.getByLabel('Run failed', { exact: true }).check()
      await page.getByLabel('Schedule missed a fire').check()
      await page.getByRole('button', { name: 'Save preferences' }).click()
      await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor()
      const stored = await s.api<any>('GET', `/api/v1/notification/preferences/${s.viewerId}`, undefined, 200)
      assert.deepEqual(stored.quiet_hours, { start: '22:30', end: '06:15' })
      assert.equal(stored.timezone, 'Europe/Berlin')
      assert.equal(stored.digest_minutes, 30)
      assert.deepEqual(stored.events, ['run.failed', 'schedule.missed'])
      assert.equal(stored.channel_ids, null)
      assert.equal(stored.updated_by, 'vic-viewer')
      // Read back by the page after a reload.
      await page.reload()
      await page.getByLabel('Quiet from').waitFor()
      assert.equal(await page.getByLabel('Quiet from').inputValue(), '22:30')
      assert.equal(await page.getByLabel('Quiet until').inputValue(), '06:15')
      assert.equal(await page.getByLabel('My time zone').inputValue(), 'Europe/Berlin')
      // A bad zone: the server's message by the zone field.
      await page.getByLabel('My time zone').fill('Nowhere/Special')
      await page.getByRole('button', { name: 'Save preferences' }).click()
      const zoneField = page.locator('.field', { has: page.getByLabel('My time zone') })
      await zoneField.locator('.field-error').filter({ hasText: 'IANA' }).waitFor()
      await assertAccessible(page, 'preferences with an error')
      await screenshot(page, 'notifications-preferences')
      await assertClean(page, problems, (t) => t.includes('status of 400'))
    } finally {
      await context.close()
    }
  })

  test('a delivery refused by a closed port becomes a dead letter; Retry from the history delivers it once the receiver is up', async () => {
    const late = await HttpReceiver.down()
    const channel = await s.api<any>('POST', '/api/v1/notification-channels', { name: 'Late hook', type: 'webhook', secret: { url: `${late.url}/late` } }, 201)
    await s.api('POST', '/api/v1/notification-rules', { name: 'Late failures', events: ['run.failed'], conditions: { job_ids: [failingJobId] }, channel_ids: [channel.id] }, 201)
    const runId = await runToEnd(failingJobId)
    const deadline = Date.now() + 60_000
    let dead: any
    for (;;) {
      dead = (await s.api<any>('GET', `/api/v1/notifications/dead-letters?channel_id=${channel.id}`)).items[0]
      if (dead) break
      assert.ok(Date.now() < deadline, 'a dead letter')
      await new Promise((r) => setTimeout(r, 200))
    }
    assert.equal(dead.run_id, runId)
    const { context, page, problems } = await signedIn(s, { path: '/notifications' })
    try {
      const card = page.getByTestId('outbox-status')
      await card.waitFor()
      assert.match((await card.textContent()) ?? '', /1\s*Dead letters/)
      await card.getByRole('button', { name: 'Show them' }).click()
      await until(page, 'the dead-letter filter', async () => new URL(page.url()).searchParams.get('status') === 'dead')
      const row = page.locator(`tr[data-notification="${dead.id}"]`)
      await row.waitFor()
      assert.match((await row.textContent()) ?? '', /Dead letter/)
      assert.match((await row.textContent()) ?? '', /Late hook/)
      // The attempt and the refusal, as recorded.
      await row.getByRole('button', { name: /1 of 1 attempts/ }).click()
      const attempts = page.getByRole('table', { name: /Attempts of/ })
      await attempts.waitFor()
      assert.match((await attempts.textContent()) ?? '', /failed/)
      assert.match((await attempts.textContent()) ?? '', /ECONNREFUSED|refused/i)
      await assertAccessible(page, 'history with a dead letter')
      await screenshot(page, 'notifications-dead-letter')

      await late.up()
      try {
        await row.getByRole('button', { name: /^Retry/ }).click()
        // The row's text now, or null while the list (reloading, filtered to dead letters) does not show it.
        const rowText = async () => ((await row.count()) ? await row.textContent({ timeout: 1_000 }).catch(() => null) : null)
        await until(page, 'the retry to be accepted', async () => !/Dead letter/.test((await rowText()) ?? ''))
        // Delivered: shown after a refresh.
        await until(page, 'the retried delivery', async () => {
          await page.getByRole('button', { name: 'Refresh' }).click()
          const text = await rowText()
          return (await page.getByLabel('Status', { exact: true }).inputValue()) === 'dead' ? text === null || /Delivered/.test(text) : /Delivered/.test(text ?? '')
        })
        assert.equal(late.received.length, 1, 'the receiver got it once')
        assert.equal((await s.api<any>('GET', `/api/v1/notifications/${dead.id}`)).status, 'delivered')
        await page.getByLabel('Status', { exact: true }).selectOption('')
        await row.waitFor()
        assert.match((await row.textContent()) ?? '', /Delivered/)
        assert.match((await row.textContent()) ?? '', /2 of 2/)
      } finally {
        await late.down()
      }
      await screenshot(page, 'notifications-history')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('a viewer sees the history, rules and preferences but no write controls; channels are for admins', async () => {
    const { context, page, problems } = await signedIn(s, { as: 'viewer', path: '/notifications' })
    try {
      await page.getByRole('table', { name: 'Delivery history' }).waitFor()
      const nav = page.getByRole('navigation', { name: 'Notifications sections' })
      assert.equal(await nav.getByRole('link', { name: 'Channels' }).count(), 0)
      for (const name of [/^Retry/, /^Discard/]) assert.equal(await page.getByRole('button', { name }).count(), 0)
      await nav.getByRole('link', { name: 'Rules' }).click()
      await page.locator('tr[data-rule="Export failures"]').waitFor()
      assert.equal(await page.getByRole('link', { name: 'New rule' }).count(), 0)
      await page.getByRole('link', { name: 'Export failures' }).click()
      await page.getByLabel('Subject template').waitFor()
      for (const name of ['Save rule', 'Delete']) assert.equal(await page.getByRole('button', { name, exact: true }).count(), 0, `no ${name}`)
      assert.equal(await page.getByLabel('Name', { exact: true }).isDisabled(), true)
      // Rendering a preview reads only: viewers may.
      await page.getByRole('button', { name: 'Render preview' }).click()
      await page.getByTestId('preview-subject').waitFor()
      await assertAccessible(page, 'rule, viewer')
      await page.goto(`${s.ui.base}/notifications/channels`)
      await page.getByText('Channels are managed by admins').waitFor()
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('phone width and dark theme; an API failure shows its error and the page stays usable', async () => {
    const phone = await signedIn(s, { width: 390, height: 844, dark: true, path: '/notifications' })
    try {
      await phone.page.getByRole('table', { name: 'Delivery history' }).waitFor()
      await assertNoPageOverflow(phone.page, 'history at 390 px')
      await assertAccessible(phone.page, 'history, phone, dark')
      await screenshot(phone.page, 'notifications-history-phone-dark')
      await phone.page.goto(`${s.ui.base}/notifications/rules/new`)
      await phone.page.getByLabel('Subject template').waitFor()
      await assertNoPageOverflow(phone.page, 'rule form at 390 px')
      await assertAccessible(phone.page, 'rule form, phone, dark')
      await screenshot(phone.page, 'notifications-rule-phone-dark')
      await assertClean(phone.page, phone.problems)
    } finally {
      await phone.context.close()
    }
    const dark = await signedIn(s, { dark: true, path: '/notifications/channels' })
    try {
      await dark.page.getByRole('table', { name: 'Channels' }).waitFor()
      await dark.page.getByRole('button', { name: 'Test Ops hook' }).click()
      await dark.page.getByRole('status', { name: 'Test of Ops hook' }).waitFor()
      await assertAccessible(dark.page, 'channels, dark')
      await screenshot(dark.page, 'notifications-channels-dark')
      await dark.page.goto(`${s.ui.base}/notifications/preferences`)
      await dark.page.getByLabel('My time zone').waitFor()
      await assertAccessible(dark.page, 'preferences, dark')
      await screenshot(dark.page, 'notifications-preferences-dark')
      await assertClean(dark.page, dark.problems)
    } finally {
      await dark.context.close()
    }
    const { context, page, problems } = await signedIn(s, { path: '/notifications/rules' })
    try {
      await page.locator('tr[data-rule="Export failures"]').waitFor()
      let fail = true
      await page.route('**/api/v1/notification/status', (route) =>
        fail ? route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: { code: 'INTERNAL', message: 'outbox unreadable', request_id: 'req-77' } }) }) : route.continue(),
      )
      await page.getByRole('link', { name: 'Delivery history' }).click()
      const alert = page.getByRole('alert').filter({ hasText: 'Could not load the delivery status' })
      await alert.waitFor()
      assert.match((await alert.textContent()) ?? '', /INTERNAL.*outbox unreadable.*req-77/s)
      await page.getByRole('table', { name: 'Delivery history' }).waitFor()
      await screenshot(page, 'notifications-status-error')
      fail = false
      await alert.getByRole('button', { name: 'Try again' }).click()
      await page.getByTestId('outbox-status').waitFor()
      await assertClean(page, problems, (t) => t.includes('status of 500'))
    } finally {
      await context.close()
    }
  })
})
