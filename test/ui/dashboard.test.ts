import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { insertUser } from '../../controller/src/users/service.ts'
import type { AgentProcess } from '../harness/agents.ts'
import { assertNoOverflow, enrolledAgent, failRequests, forcedFailure, setTheme, shot } from './agents-helpers.ts'
import { Api } from './runs-helpers.ts'
import { adminToken, assertAccessible, assertClean, launchBrowser, openPage, signIn, skipUi, startUiController, type UiController } from './harness.ts'

// The dashboard against runs, schedules and agents made through the API: counts that match,
// a long run's progress live, one card failing without the others, and a viewer's view.

let ui: UiController
let browser: Browser
let api: Api
const agents: AgentProcess[] = []
const PASSWORD = 'dashboard viewer passphrase 6Hw2'
const jobs = { fails: '', succeeds: '', long: '' }

before(async () => {
  if (skipUi) return
  ui = await startUiController()
  browser = await launchBrowser()
  api = new Api(ui.base, await adminToken(ui.base))
  const { ctx } = ui.controller
  await insertUser(ctx.db, { username: 'dora', password: PASSWORD, role: 'viewer', must_change_password: false }, ctx.clock())
  // Nothing listens on port 1 of the loopback: the GET fails at once.
  jobs.fails = await api.job({ name: 'dash fails', steps: [{ id: 'probe', type: 'http.get', url: 'http://127.0.0.1:1/health' }] })
  jobs.succeeds = await api.job({ name: 'dash succeeds', steps: [{ id: 'pause', type: 'wait', seconds: 0.1 }] })
  jobs.long = await api.job({
    name: 'dash long',
    steps: [
      { id: 'warm', type: 'wait', seconds: 0.2 },
      { id: 'soak', type: 'wait', seconds: 600 },
    ],
  })
})
after(async () => {
  await Promise.all(agents.map((a) => a.kill('SIGKILL')))
  await browser?.close()
  await ui?.stop()
})

const card = (page: Page, id: string) => page.getByTestId(id)
const text = async (page: Page, testId: string) => ((await page.getByTestId(testId).first().textContent()) ?? '').trim()

async function waitText(page: Page, testId: string, expected: string, timeout = 30_000): Promise<void> {
  await page.waitForFunction(([id, want]) => document.querySelector(`[data-testid="${id}"]`)?.textContent?.trim() === want, [testId, expected] as const, { timeout })
}

describe('dashboard', { skip: skipUi }, () => {
  test('runs by status, failing jobs, agents and next fires match what the API made; light, dark and phone', async () => {
    const runs: Record<string, string[]> = { fails: [], succeeds: [] }
    for (let i = 0; i < 2; i++) runs.fails!.push(await api.run(jobs.fails))
    for (let i = 0; i < 3; i++) runs.succeeds!.push(await api.run(jobs.succeeds))
    for (const id of runs.fails!) assert.equal((await api.waitForRun(id)).status, 'failed')
    for (const id of runs.succeeds!) assert.equal((await api.waitForRun(id)).status, 'succeeded')
    const latestFailure = (await api.call<{ items: { id: string }[] }>('GET', `/api/v1/runs?job_id=${jobs.fails}&limit=1`, undefined, 200)).items[0]!.id

    const soonHour = (new Date().getUTCHours() + 2) % 24
    const base = { job_id: jobs.succeeds, timezone: 'UTC' }
    await api.call('POST', '/api/v1/schedules', { ...base, name: 'dash daily', cron: `0 ${soonHour} * * *` }, 201)
    await api.call('POST', '/api/v1/schedules', { ...base, name: 'dash yearly', cron: '0 3 1 1 *' }, 201)
    await api.call('POST', '/api/v1/schedules', { ...base, name: 'dash disabled', cron: '* * * * *', enabled: false }, 201)

    const online = await enrolledAgent(ui, api.token, true)
    agents.push(online.agent!)
    await enrolledAgent(ui, api.token, false)

    const { context, page, problems } = await openPage(browser)
    try {
      await signIn(page, ui.base)
      await waitText(page, 'runs-total', '5')
      assert.equal(await text(page, 'count-succeeded'), '3')
      assert.equal(await text(page, 'count-failed'), '2')
      assert.equal(await card(page, 'run-stats').locator('[data-status="cancelled"]').count(), 0, 'statuses that did not happen are left out')
      assert.match((await card(page, 'run-stats').getByRole('img').getAttribute('aria-label')) ?? '', /busiest hour.* had 5 \(2 failed\)/)
      assert.equal(await card(page, 'run-stats').getByRole('link', { name: 'Failed' }).getAttribute('href'), '/runs?status=failed')

      await waitText(page, 'failing-count', '1')
      const failing = card(page, 'failing-jobs')
      assert.equal(await failing.getByRole('link', { name: 'dash fails' }).getAttribute('href'), `/jobs/${jobs.fails}`)
      assert.equal(await failing.locator(`[data-job-id="${jobs.fails}"] a[href^="/runs/"]`).getAttribute('href'), `/runs/${latestFailure}`)
      assert.equal(await failing.getByRole('link', { name: 'dash succeeds' }).count(), 0)
      assert.match((await failing.locator('.failure-reason').textContent()) ?? '', /\S/, 'why it failed: the failed step says')

      await waitText(page, 'agents-online', '1')
      assert.equal(await text(page, 'agents-offline'), '1')
      assert.equal(await text(page, 'agents-revoked'), '0')

      const fires = card(page, 'next-fires')
      await fires.getByRole('link', { name: 'dash daily' }).waitFor()
      assert.deepEqual(await fires.locator('li a').allTextContents(), ['dash daily', 'dash yearly'], 'soonest first; the disabled schedule is not due')
      assert.match((await fires.locator('li').first().locator('time').textContent()) ?? '', /^in \d+ (min|h)$/)

      await card(page, 'readiness').getByText('Ready').waitFor()
      assert.equal(await text(page, 'running-count'), '0')
      await card(page, 'active-runs').getByText('Nothing is running right now.').waitFor()

      await assertAccessible(page, 'the dashboard')
      await shot(page, 'dashboard')
      await setTheme(page, 'dark')
      await assertAccessible(page, 'the dashboard, dark')
      await shot(page, 'dashboard-dark')
      await setTheme(page, 'light')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }

    const phone = await openPage(browser, { width: 390, height: 844 })
    try {
      await signIn(phone.page, ui.base)
      await waitText(phone.page, 'runs-total', '5')
      await card(phone.page, 'next-fires').getByRole('link', { name: 'dash daily' }).waitFor()
      await assertNoOverflow(phone.page, 'the dashboard at 390 px')
      await assertAccessible(phone.page, 'the dashboard on a phone')
      await shot(phone.page, 'dashboard-phone')
      await setTheme(phone.page, 'dark')
      await shot(phone.page, 'dashboard-phone-dark')
      await setTheme(phone.page, 'light')
      await assertClean(phone.page, phone.problems)
    } finally {
      await phone.context.close()
    }
  })

  test('a long run appears in Running now and its progress moves without a reload; cancelled, it leaves', async () => {
    const { context, page, problems } = await openPage(browser)
    try {
      await signIn(page, ui.base)
      const active = card(page, 'active-runs')
      await active.getByText('Nothing is running right now.').waitFor()
      const runId = await api.run(jobs.long)
      const item = active.locator(`[data-run-id="${runId}"]`)
      await item.waitFor({ timeout: 30_000 })
      assert.equal(await item.getByRole('link', { name: 'dash long' }).getAttribute('href'), `/runs/${runId}`)
      // The first step (0.2 s) ends; the second waits: 1 of 2, shown as text and on the progress bar.
      const bar = item.getByRole('progressbar', { name: 'dash long progress' })
      await page.waitForFunction((id) => document.querySelector(`[data-run-id="${id}"] [role="progressbar"]`)?.getAttribute('aria-valuenow') === '1', runId, { timeout: 30_000 })
      assert.equal(await bar.getAttribute('aria-valuemax'), '2')
      assert.equal(await bar.getAttribute('aria-valuetext'), '1 of 2 steps done')
      assert.equal((await item.getByTestId('run-progress').textContent())?.trim(), '1 / 2 steps')
      await waitText(page, 'running-count', '1')
      await assertAccessible(page, 'the dashboard with a running run')
      await shot(page, 'dashboard-running')

      await api.call('POST', `/api/v1/runs/${runId}/cancel`, undefined, 202)
      await api.waitForRun(runId)
      await active.getByText('Nothing is running right now.').waitFor({ timeout: 30_000 })
      // The statistics follow on their own (a slower refresh).
      await card(page, 'run-stats').locator('[data-status="cancelled"]').waitFor({ timeout: 45_000 })
      assert.equal(await text(page, 'count-cancelled'), '1')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('each card has its own loading and error state: a failing endpoint leaves the others working, Try again recovers', async () => {
    const { context, page, problems } = await openPage(browser)
    try {
      await signIn(page, ui.base)
      await waitText(page, 'runs-total', '6')
      const restoreFailing = await failRequests(page, '**/api/v1/dashboard/failing-jobs**')
      const restoreAgents = await failRequests(page, '**/api/v1/agents/counts')
      let release!: () => void
      const gate = new Promise<void>((r) => (release = r))
      await page.route('**/api/v1/dashboard/run-stats**', async (route) => {
        await gate
        await route.continue()
      })
      await page.reload()

      const failing = card(page, 'failing-jobs')
      await failing.getByRole('alert').waitFor()
      assert.match((await failing.getByRole('alert').textContent()) ?? '', /Could not load failing jobs.*INTERNAL.*forced by the test.*Request id test-req-1/)
      await card(page, 'agent-summary').getByRole('alert').getByText('Could not load agent counts').waitFor()
      // The others: loaded, or (run stats, held back) still loading.
      await card(page, 'readiness').getByText('Ready').waitFor()
      await card(page, 'next-fires').getByRole('link', { name: 'dash daily' }).waitFor()
      await card(page, 'active-runs').getByText('Nothing is running right now.').waitFor()
      assert.equal(await card(page, 'run-stats').locator('[aria-busy="true"]').count(), 1, 'run stats are loading')
      assert.equal(await page.getByRole('alert').count(), 2, 'only the two failing cards show an error')
      await assertAccessible(page, 'the dashboard with failing cards')
      await shot(page, 'dashboard-errors')

      release()
      await waitText(page, 'runs-total', '6')
      await restoreFailing()
      await restoreAgents()
      await failing.getByRole('button', { name: 'Try again' }).click()
      await waitText(page, 'failing-count', '1')
      await card(page, 'agent-summary').getByRole('button', { name: 'Try again' }).click()
      await waitText(page, 'agents-online', '1')
      assert.equal(await page.getByRole('alert').count(), 0)
      await assertClean(page, problems, forcedFailure(500))
    } finally {
      await context.close()
    }
  })

  test("a viewer's dashboard leaves out the agent counts and asks for nothing the viewer may not read", async () => {
    const { context, page, problems } = await openPage(browser)
    try {
      const requests: string[] = []
      page.on('request', (r) => requests.push(new URL(r.url()).pathname))
      await signIn(page, ui.base, 'dora', PASSWORD)
      await waitText(page, 'runs-total', '6')
      await waitText(page, 'failing-count', '1')
      await card(page, 'next-fires').getByRole('link', { name: 'dash daily' }).waitFor()
      await card(page, 'readiness').getByText('Ready').waitFor()
      assert.equal(await card(page, 'agent-summary').count(), 0)
      assert.deepEqual(requests.filter((p) => p.startsWith('/api/v1/agents')), [])
      await assertAccessible(page, "a viewer's dashboard")
      await shot(page, 'dashboard-viewer')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })
})
