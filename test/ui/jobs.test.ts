import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { insertUser } from '../../controller/src/users/service.ts'
import { assertAccessible, assertClean, launchBrowser, screenshot, skipUi, startUiController, type UiController } from './harness.ts'
import { announced, createJob, createTarget, getApi, signedIn, stepCards, stepGroup, stepNames, until } from './jobs-helpers.ts'

// The jobs pages: list, builder (palette, reordering, per-type forms, server errors inline, JSON
// view), versions and their diff, the run dialog with its plan, and what a viewer may do.

let ui: UiController
let browser: Browser
const VIEWER_PASSWORD = 'jobs viewer passphrase 3Rw8'
/** The job the builder test saves; later tests edit, diff and run it. */
let builtId = ''

before(async () => {
  if (skipUi) return
  ui = await startUiController()
  browser = await launchBrowser()
  const { ctx } = ui.controller
  await insertUser(ctx.db, { username: 'vic', password: VIEWER_PASSWORD, role: 'viewer', must_change_password: false }, ctx.clock())
  for (const [name, env] of [
    ['web-01', 'prod'],
    ['web-02', 'prod'],
    ['db-01', 'staging'],
  ] as const) {
    await createTarget(ui.base, { name, address: '127.0.0.1', os_type: 'linux', tags: { env }, connection: { type: 'ssh' } })
  }
})
after(async () => {
  await browser?.close()
  await ui?.stop()
})

const jobUrl = (page: Page) => new URL(page.url()).pathname

describe('jobs UI', { skip: skipUi }, () => {
  test('build a two-step job from the palette, reorder it by keyboard and by drag, save, reload and see it', async () => {
    const { context, page, problems } = await signedIn(browser, ui.base)
    try {
      await page.goto(`${ui.base}/jobs`)
      await page.getByRole('heading', { name: 'Jobs', level: 1 }).waitFor()
      await page.getByText('No jobs yet').waitFor()
      await page.getByRole('link', { name: 'New job' }).click()
      await page.getByRole('heading', { name: 'New job' }).waitFor()
      await page.getByLabel('Name (required)').fill('Health check')

      // The palette is open for a new job: a template and a bare step type.
      const palette = page.getByRole('region', { name: 'Step palette' })
      await palette.getByRole('button', { name: 'Wait', exact: true }).click()
      await palette.getByRole('button', { name: 'HTTP GET (http.get)', exact: true }).click()
      assert.deepEqual(await stepNames(page), ['Wait', 'HTTP GET'])
      assert.match(await announced(page), /Added step 2 of 2: HTTP GET/)
      await stepGroup(page, 2, /^Step 2: HTTP GET/).getByLabel('URL (required)').fill('http://127.0.0.1:9/health')

      // Default targets with a live preview from the controller.
      await page.getByLabel('Default targets (selector)').fill('env=prod')
      await page.getByText('2 targets match now').waitFor()
      await page.getByText('web-01').first().waitFor()
      await page.getByLabel('Default targets (selector)').fill('env=prod,,')
      await page.locator('.selector-preview .field-error').filter({ hasText: /expected a term/ }).waitFor()
      await page.getByLabel('Default targets (selector)').fill('')

      // Keyboard: Alt+ArrowUp on the focused step moves it; focus stays on it; the move is announced.
      await page.locator('#' + (await stepCards(page).nth(1).locator('.step-title').getAttribute('id'))).focus()
      await page.keyboard.press('Alt+ArrowUp')
      assert.deepEqual(await stepNames(page), ['HTTP GET', 'Wait'])
      assert.match(await announced(page), /Moved “HTTP GET” to position 1 of 2/)
      await until(page, async () => (await page.evaluate(() => document.activeElement?.textContent ?? '')).includes('HTTP GET'), 'focus on the moved step')
      // … and with its Move down button.
      await stepGroup(page, 1, /^Step 1: HTTP GET/).getByRole('button', { name: 'Move down' }).click()
      assert.deepEqual(await stepNames(page), ['Wait', 'HTTP GET'])
      await page.keyboard.press('Alt+ArrowUp')
      assert.deepEqual(await stepNames(page), ['HTTP GET', 'Wait'])

      // Drag: collapsed (as one does to reorder), Wait's handle onto the top half of the first card puts it first again.
      for (const card of await stepCards(page).locator('.step-title').all()) await card.click()
      assert.deepEqual(await stepCards(page).locator('.step-title').evaluateAll((els) => els.map((e) => e.getAttribute('aria-expanded'))), ['false', 'false'])
      await stepCards(page).nth(1).locator('.drag-handle').dragTo(stepCards(page).nth(0), { targetPosition: { x: 40, y: 4 } })
      assert.deepEqual(await stepNames(page), ['Wait', 'HTTP GET'])
      assert.match(await announced(page), /Moved “Wait” to position 1 of 2/)

      await assertAccessible(page, 'the builder')
      await screenshot(page, 'jobs-builder')
      await page.getByRole('button', { name: 'Save' }).click()
      await page.getByText('Saved as version 1.').waitFor()
      builtId = jobUrl(page).split('/')[2]!
      assert.match(builtId, /^[0-9a-f-]{36}$/)

      await page.reload()
      await page.getByRole('region', { name: 'Steps' }).getByText('HTTP GET').first().waitFor()
      assert.deepEqual(await page.locator('.step-summary .step-name').allTextContents(), ['Wait', 'HTTP GET'])
      const stored = await getApi(ui.base, `/api/v1/jobs/${builtId}`)
      assert.deepEqual(
        stored.steps.map((s: { id: string; type: string }) => [s.id, s.type]),
        [
          ['wait', 'wait'],
          ['http_get', 'http.get'],
        ],
      )
      assert.equal(stored.steps[0].seconds, 30)
      assert.equal(stored.steps[1].url, 'http://127.0.0.1:9/health')
      // The invalid selector's preview was a 400 (the browser logs it).
      await assertClean(page, problems, (t) => t.includes('status of 400') && t.includes('/api/v1/targets/resolve'))
    } finally {
      await context.close()
    }
  })

  test("the server's validation errors appear by the right fields; fixing them saves", async () => {
    const { context, page, problems } = await signedIn(browser, ui.base)
    try {
      await page.goto(`${ui.base}/jobs/${builtId}/edit`)
      await page.getByRole('heading', { name: 'Edit Health check' }).waitFor()
      const http = stepGroup(page, 2, /^Step 2: HTTP GET/)
      await http.getByLabel('URL (required)').fill('not a url')
      await page.getByRole('button', { name: 'Add step' }).click()
      await page.getByRole('region', { name: 'Step palette' }).getByRole('button', { name: 'Wait (wait)', exact: true }).click()
      await page.getByRole('button', { name: 'Save' }).click()

      const urlField = http.getByLabel('URL (required)')
      await until(page, async () => (await urlField.getAttribute('aria-invalid')) === 'true', 'the URL marked invalid')
      const urlNote = http.locator(`#${await urlField.getAttribute('id')}-note`)
      assert.equal(await urlNote.textContent(), 'not a valid URL')
      // The bare wait step lacks its seconds: that error sits by its own field.
      const seconds = stepGroup(page, 3, /^Step 3: Wait/).getByLabel('Seconds (required)')
      assert.equal(await seconds.getAttribute('aria-invalid'), 'true')
      assert.match((await page.locator(`#${await seconds.getAttribute('id')}-note`).textContent()) ?? '', /required/)
      const summary = page.getByRole('list', { name: 'Problems to fix' })
      assert.deepEqual((await summary.locator('button').allTextContents()).sort(), ['steps[1].url', 'steps[2].seconds'])
      await assertAccessible(page, 'the builder showing server errors')
      await screenshot(page, 'jobs-builder-errors')

      // A summary entry jumps to its field.
      await summary.getByRole('button', { name: 'steps[2].seconds' }).click()
      await until(page, async () => (await page.evaluate(() => document.activeElement?.id ?? '')) === (await seconds.getAttribute('id')), 'focus on the seconds field')
      await seconds.fill('0.1')
      await urlField.fill('http://127.0.0.1:9/ready')
      assert.equal(await urlField.getAttribute('aria-invalid'), null, 'editing the field clears its error')
      await page.getByRole('button', { name: 'Save' }).click()
      await page.getByText('Saved as version 2.').waitFor()
      const stored = await getApi(ui.base, `/api/v1/jobs/${builtId}`)
      assert.equal(stored.steps.length, 3)
      assert.equal(stored.steps[2].seconds, 0.1)
      await assertClean(page, problems, (t) => t.includes('status of 400'))
    } finally {
      await context.close()
    }
  })

  test('the JSON view round-trips with the form; invalid JSON keeps the form', async () => {
    const { context, page, problems } = await signedIn(browser, ui.base)
    try {
      await page.goto(`${ui.base}/jobs/${builtId}/edit`)
      await page.getByRole('heading', { name: 'Edit Health check' }).waitFor()
      await page.getByRole('tab', { name: 'JSON' }).click()
      const json = page.getByLabel('Job definition (JSON)')
      const text = await json.inputValue()
      const definition = JSON.parse(text)
      assert.equal(definition.name, 'Health check')
      assert.equal('id' in definition, false, 'server fields are not part of the definition')

      await json.fill(text.slice(0, -10))
      await page.locator('#job-json-note.field-error').filter({ hasText: /Invalid JSON/ }).waitFor()
      await screenshot(page, 'jobs-builder-json-invalid')
      await page.getByRole('tab', { name: 'Form' }).click()
      assert.equal(await page.getByLabel('Name (required)').inputValue(), 'Health check', 'the form keeps the last valid definition')

      // JSON → form.
      await page.getByRole('tab', { name: 'JSON' }).click()
      definition.steps[0].seconds = 5
      definition.description = 'Edited as JSON'
      await json.fill(JSON.stringify(definition, null, 2))
      await page.getByRole('tab', { name: 'Form' }).click()
      assert.equal(await page.getByRole('region', { name: 'General' }).getByLabel('Description').inputValue(), 'Edited as JSON')
      await until(page, async () => (await stepGroup(page, 1, /^Step 1: Wait/).getByLabel('Seconds (required)').inputValue()) === '5', 'seconds 5 in the form')

      // Form → JSON.
      await page.getByLabel('Name (required)').fill('Health check (edited)')
      await page.getByRole('tab', { name: 'JSON' }).click()
      assert.equal(JSON.parse(await json.inputValue()).name, 'Health check (edited)')
      await assertAccessible(page, 'the JSON view')
      await page.getByRole('button', { name: 'Save' }).click()
      await page.getByText('Saved as version 3.').waitFor()
      const stored = await getApi(ui.base, `/api/v1/jobs/${builtId}`)
      assert.equal(stored.steps[0].seconds, 5)
      assert.equal(stored.description, 'Edited as JSON')
      assert.equal(stored.name, 'Health check (edited)')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('versions: the diff between two versions shows the change', async () => {
    const { context, page, problems } = await signedIn(browser, ui.base)
    try {
      await page.goto(`${ui.base}/jobs/${builtId}`)
      const versions = page.locator('section.versions')
      await versions.getByRole('cell', { name: 'v3 current' }).waitFor()
      assert.equal(await versions.locator('tbody tr').count(), 3)
      const diff = page.getByRole('region', { name: 'Changes from v2 to v3' })
      await diff.waitFor()
      const removed = await diff.locator('del').allTextContents()
      const added = await diff.locator('ins').allTextContents()
      assert.ok(removed.some((l) => /"seconds": 30/.test(l)), `removed lines: ${removed.join(' | ')}`)
      assert.ok(added.some((l) => /"seconds": 5/.test(l)), `added lines: ${added.join(' | ')}`)
      assert.ok(added.some((l) => /"description": "Edited as JSON"/.test(l)))
      await page.getByLabel('From version').selectOption('1')
      await page.getByRole('region', { name: 'Changes from v1 to v3' }).waitFor()
      assert.ok((await page.getByRole('region', { name: 'Changes from v1 to v3' }).locator('ins').allTextContents()).some((l) => /"seconds": 0.1/.test(l)))
      await assertAccessible(page, 'the job page with versions')
      await screenshot(page, 'jobs-job-page')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('run dialog: typed parameters, the plan first, then the run with its parameters', async () => {
    const job = await createJob(ui.base, {
      name: 'Restart a service',
      parameters: [
        { name: 'svc', type: 'string', required: true, label: 'Service' },
        { name: 'count', type: 'number', default: 2, min: 1 },
        { name: 'mode', type: 'choice', choices: ['graceful', 'hard'], default: 'graceful' },
        { name: 'verbose', type: 'boolean', default: false },
        { name: 'token', type: 'secret' },
      ],
      steps: [{ id: 'pause', type: 'wait', seconds: 0.05 }],
    })
    const { context, page, problems } = await signedIn(browser, ui.base)
    try {
      await page.goto(`${ui.base}/jobs/${job.id}`)
      const runButton = page.getByRole('button', { name: 'Run', exact: true })
      await runButton.click()
      const dialog = page.getByRole('dialog', { name: 'Run Restart a service' })
      await dialog.waitFor()
      assert.equal(await dialog.getByLabel('count').inputValue(), '2')
      assert.equal(await dialog.getByLabel('count').getAttribute('type'), 'number')
      assert.equal(await dialog.getByLabel('mode').inputValue(), 'graceful')
      assert.equal(await dialog.getByLabel('verbose').getAttribute('type'), 'checkbox')
      assert.equal(await dialog.getByLabel('token').getAttribute('type'), 'password')
      assert.equal(await dialog.getByRole('button', { name: 'Launch run' }).isDisabled(), true, 'no launch before a plan')
      await assertAccessible(page, 'the run dialog')
      await screenshot(page, 'jobs-run-dialog')

      // The required parameter is missing: the server says so by its field.
      await dialog.getByRole('button', { name: 'Preview plan' }).click()
      const svc = dialog.getByLabel('Service (required)')
      await until(page, async () => (await svc.getAttribute('aria-invalid')) === 'true', 'svc marked invalid')
      await svc.fill('nginx')
      await dialog.getByLabel('mode').selectOption('hard')
      await dialog.getByLabel('verbose').check()
      await dialog.getByLabel('token').fill('s3cret-value')
      await dialog.getByRole('button', { name: 'Preview plan' }).click()
      const plan = dialog.getByRole('region', { name: 'Plan', exact: true })
      await plan.waitFor()
      assert.match((await plan.textContent()) ?? '', /wait/)
      assert.match((await plan.textContent()) ?? '', /\*\*\*\*/, 'the secret is masked in the plan')
      assert.doesNotMatch((await plan.textContent()) ?? '', /s3cret-value/)
      assert.equal(await plan.getByRole('cell', { name: 'the controller (no target)' }).count(), 1)
      await assertAccessible(page, 'the run dialog with a plan')
      await screenshot(page, 'jobs-run-dialog-plan')

      await dialog.getByRole('button', { name: 'Launch run' }).click()
      await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/)
      const runId = jobUrl(page).split('/')[2]!
      const run = await getApi(ui.base, `/api/v1/runs/${runId}`)
      assert.equal(run.job_id, job.id)
      assert.equal(run.parameters.svc, 'nginx')
      assert.equal(run.parameters.count, 2)
      assert.equal(run.parameters.mode, 'hard')
      assert.equal(run.parameters.verbose, true)
      assert.equal(run.parameters.token, '****')
      await assertClean(page, problems, (t) => t.includes('status of 400'))
    } finally {
      await context.close()
    }
  })

  test('the run dialog closes on Escape and gives focus back to Run', async () => {
    const { context, page } = await signedIn(browser, ui.base)
    try {
      await page.goto(`${ui.base}/jobs/${builtId}`)
      const runButton = page.getByRole('button', { name: 'Run', exact: true })
      await runButton.click()
      await page.getByRole('dialog').waitFor()
      await page.keyboard.press('Escape')
      await page.getByRole('dialog').waitFor({ state: 'hidden' })
      assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Run')
    } finally {
      await context.close()
    }
  })

  test('a viewer sees the jobs but no create, import, edit, delete or run buttons', async () => {
    const { context, page, problems } = await signedIn(browser, ui.base, { user: 'vic', password: VIEWER_PASSWORD })
    try {
      await page.goto(`${ui.base}/jobs`)
      await page.getByRole('link', { name: 'Health check (edited)' }).waitFor()
      assert.equal(await page.getByRole('link', { name: 'New job' }).count(), 0)
      assert.equal(await page.getByRole('button', { name: 'Import' }).count(), 0)
      assert.equal(await page.getByRole('button', { name: 'Export' }).count(), 1)
      await page.getByRole('link', { name: 'Health check (edited)' }).click()
      await page.getByRole('heading', { name: 'Health check (edited)' }).waitFor()
      await page.locator('section.versions').waitFor()
      for (const name of ['Run', 'Delete']) assert.equal(await page.getByRole('button', { name, exact: true }).count(), 0, name)
      assert.equal(await page.getByRole('link', { name: 'Edit' }).count(), 0)
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('the list: search, tag filter, last run, a failed load shows the error and recovers', async () => {
    await createJob(ui.base, { name: 'Nightly cleanup', tags: ['nightly'], steps: [{ type: 'wait', seconds: 0.05 }] })
    const { context, page, problems } = await signedIn(browser, ui.base)
    try {
      await page.goto(`${ui.base}/jobs`)
      const table = page.getByRole('table', { name: 'Jobs' })
      await table.getByRole('link', { name: 'Restart a service' }).waitFor()
      // The run launched earlier is this job's last run.
      const row = table.getByRole('row').filter({ has: page.getByRole('link', { name: 'Restart a service' }) })
      await row.locator('a.run-link .badge').waitFor()
      await page.getByRole('button', { name: 'Filter by tag nightly' }).click()
      await until(page, async () => (await table.locator('td.job-name-cell > a').allTextContents()).join() === 'Nightly cleanup', 'the tag filter')
      assert.match(page.url(), /tag=nightly/)
      await page.getByRole('button', { name: 'Clear tag filter' }).click()
      await page.getByLabel('Search jobs').fill('restart')
      await until(page, async () => (await table.locator('td.job-name-cell > a').allTextContents()).join() === 'Restart a service', 'the search')
      await page.getByLabel('Search jobs').fill('')
      await table.getByRole('link', { name: 'Nightly cleanup' }).waitFor()
      await assertAccessible(page, 'the jobs list')
      await screenshot(page, 'jobs-list')

      const jobsList = (url: URL) => url.pathname === '/api/v1/jobs'
      await page.route(jobsList, (route) => route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: { code: 'INTERNAL', message: 'internal error', request_id: 'req-jobs-1' } }) }))
      await page.getByLabel('Search jobs').fill('x')
      const alert = page.getByRole('alert').filter({ hasText: 'Could not load jobs' })
      await alert.waitFor()
      assert.match((await alert.textContent()) ?? '', /INTERNAL.*internal error.*req-jobs-1/s)
      await assertAccessible(page, 'the jobs list showing an error')
      await page.unroute(jobsList)
      await alert.getByRole('button', { name: 'Try again' }).click()
      await page.getByText('No job matches').waitFor()
      await page.getByLabel('Search jobs').fill('')
      await table.getByRole('link', { name: 'Nightly cleanup' }).waitFor()
      await assertClean(page, problems, (t) => t.includes('status of 500'))
    } finally {
      await context.close()
    }
  })

  test('phone width and dark theme: list, builder and run dialog stay usable and accessible', async () => {
    for (const [label, opts] of [
      ['phone', { width: 390 }],
      ['dark', { dark: true }],
      ['phone-dark', { width: 390, dark: true }],
    ] as const) {
      const { context, page, problems } = await signedIn(browser, ui.base, opts)
      try {
        await page.goto(`${ui.base}/jobs`)
        await page.getByRole('table', { name: 'Jobs' }).waitFor()
        await assertAccessible(page, `the jobs list (${label})`)
        await screenshot(page, `jobs-list-${label}`)
        await page.goto(`${ui.base}/jobs/${builtId}/edit`)
        await page.getByRole('heading', { name: /^Edit / }).waitFor()
        await page.getByRole('button', { name: 'Add step' }).click()
        await page.getByRole('region', { name: 'Step palette' }).waitFor()
        await assertAccessible(page, `the builder (${label})`)
        await screenshot(page, `jobs-builder-${label}`)
        await page.goto(`${ui.base}/jobs/${builtId}`)
        await page.getByRole('button', { name: 'Run', exact: true }).click()
        await page.getByRole('dialog').getByRole('button', { name: 'Preview plan' }).click()
        await page.getByRole('dialog').getByRole('region', { name: 'Plan', exact: true }).waitFor()
        await assertAccessible(page, `the run dialog (${label})`)
        await screenshot(page, `jobs-run-dialog-${label}`)
        if (opts.width) {
          // Nothing of these pages sticks out of the content area or the dialog (tables and the diff scroll inside their own boxes).
          // A string, not a function: the test runner's transform would add helpers the page does not have.
          const outside = await page.evaluate(`(() => {
            const content = document.querySelector('.content').getBoundingClientRect()
            const dialog = document.querySelector('dialog[open]')
            const out = []
            for (const el of document.querySelectorAll('.content *')) {
              if (el.closest('.table-wrap, .diff, dialog')) continue
              if (el.getBoundingClientRect().right > content.right + 1) out.push(el.tagName + '.' + el.className)
            }
            if (dialog) {
              const box = dialog.getBoundingClientRect()
              for (const el of dialog.querySelectorAll('*')) if (!el.closest('.table-wrap') && el.getBoundingClientRect().right > box.right + 1) out.push('dialog ' + el.tagName + '.' + el.className)
            }
            return out
          })()`)
          assert.deepEqual(outside, [], 'no element overflows at 390 px')
        }
        await assertClean(page, problems)
      } finally {
        await context.close()
      }
    }
  })
})
