import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { insertUser } from '../../controller/src/users/service.ts'
import type { AgentProcess } from '../harness/agents.ts'
import { CuttableProxy, waitUntil } from '../harness/agents.ts'
import { ADMIN_PASSWORD, adminToken, assertAccessible, assertClean, launchBrowser, openPage, screenshot, skipUi, startUiController, type UiController } from './harness.ts'
import { Api, atEnd, scrollAndMeasure, seedOutput, shownLines, signInTo, startAgent } from './runs-helpers.ts'

// The runs list and the run view, in Chromium against a real controller with a real agent on this
// machine: live output over SSE, ANSI colours, follow/pause, search, filters, download, cancel,
// retry, reload mid-run, and a 200,000-line output scrolled while frame times are measured.

let ui: UiController
let browser: Browser
let api: Api
let agent: AgentProcess
let target: { id: string; name: string }
const work = mkdtempSync(path.join(tmpdir(), 'opsc-ui-runs-'))
const VIEWER_PASSWORD = 'runs viewer passphrase 4Tq8'
const t0 = Date.now()
/** Progress lines with the elapsed time (a slow step on a loaded machine shows where it was). */
const mark = (what: string) => console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`)
const release = (name: string) => writeFileSync(path.join(work, name), 'go')
const waitFor = (name: string) => `while [ ! -e ${path.join(work, name)} ]; do sleep 0.1; done`

before(async () => {
  if (skipUi) return
  ui = await startUiController()
  browser = await launchBrowser()
  api = new Api(ui.base, await adminToken(ui.base))
  const started = await startAgent(ui, api.token)
  agent = started.agent
  target = { id: started.targetId, name: started.name }
  const { ctx } = ui.controller
  await insertUser(ctx.db, { username: 'runs-viewer', password: VIEWER_PASSWORD, role: 'viewer', must_change_password: false }, ctx.clock())
})
after(async () => {
  await agent?.kill('SIGTERM')
  await browser?.close()
  await ui?.stop()
})

const exec = (id: string, command: string) => ({ id, type: 'exec', shell: 'bash', command })
const onAgent = () => `id:${target.id}`
const badge = (page: Page) => page.getByTestId('run-status')
const output = (page: Page) => page.getByRole('log', { name: 'Run output' })
const cellName = (step: string, status: string) => `${step} on ${target.name}: ${status}`

/** A signed-in page on `next` (default /runs); `base` may be another way to the controller (a proxy). */
async function openAs(width = 1280, user?: string, next = '/runs', base = ui.base) {
  const opened = await openPage(browser, { width, height: 900 })
  await signInTo(opened.page, base, next, user ?? 'admin', user ? VIEWER_PASSWORD : ADMIN_PASSWORD)
  return opened
}

/** Whether an element's content fits its width (nothing pushes the page sideways). */
const fitsWidth = (page: Page, selector: string) => page.evaluate(`(() => { const el = document.querySelector('${selector}'); return el.scrollWidth <= el.clientWidth + 1 && el.getBoundingClientRect().right <= window.innerWidth + 8 })()`) as Promise<boolean>

async function setTheme(page: Page, theme: 'light' | 'dark') {
  const toggle = page.getByRole('button', { name: theme === 'dark' ? 'Switch to dark theme' : 'Switch to light theme' })
  if (await toggle.count()) await toggle.click()
  await page.waitForFunction((t) => document.documentElement.dataset.theme === t, theme)
}

describe('runs: run view', { skip: skipUi }, () => {
  test('live output before the run ends: ANSI colours, follow and pause, search, stream filter, step cells, download', async () => {
    const jobId = await api.job({
      name: 'live build',
      targets: onAgent(),
      steps: [
        exec(
          'build',
          [
            `printf '\\033[1;32mgreen start\\033[0m plain\\n'`,
            'sleep 0.5',
            `printf '\\033[31mred error text\\033[0m\\n' >&2`,
            'sleep 0.5',
            'for i in $(seq 1 300); do echo "build line $i"; done',
            'echo "stderr line A" >&2',
            waitFor('live-1'),
            'for i in $(seq 301 320); do echo "build line $i"; done',
            'echo "needle in the output"',
            waitFor('live-2'),
            'echo "final line"',
          ].join('\n'),
        ),
        exec('report', 'echo "report step output"'),
      ],
    })
    const runId = await api.run(jobId)
    const { context, page, problems } = await openAs()
    try {
      await page.goto(`${ui.base}/runs/${runId}`)
      await page.getByRole('heading', { name: 'live build' }).waitFor()
      // Following: the tail shows as it streams, while the run is still running.
      await output(page).getByText('stderr line A').waitFor()
      assert.equal((await api.getRun(runId)).status, 'running', 'the output arrived before the run ended')
      assert.equal(await page.getByRole('button', { name: 'Follow' }).getAttribute('aria-pressed'), 'true')
      assert.ok(await atEnd(page), 'following keeps the tail in view')
      await page.getByRole('button', { name: cellName('build', 'running') }).waitFor()
      await page.getByRole('button', { name: cellName('report', 'queued') }).waitFor()
      await assertAccessible(page, 'run view while running (light)')
      await screenshot(page, 'runs-view-live')

      // Scrolling up (Home in the focused list) pauses following.
      await output(page).focus()
      await page.keyboard.press('Home')
      await page.waitForFunction(() => document.querySelector('[aria-label="Run output"]')!.scrollTop === 0)
      await waitUntil(async () => (await page.getByRole('button', { name: 'Follow' }).getAttribute('aria-pressed')) === 'false', 5000, 'follow paused')

      // ANSI colours are spans with the palette's classes (never markup from the output).
      const green = output(page).locator('span.ansi-fg-2.ansi-bold', { hasText: 'green start' })
      await green.waitFor()
      assert.deepEqual(await green.evaluate((el) => [getComputedStyle(el).color, getComputedStyle(el).fontWeight]), ['rgb(63, 185, 80)', '700'])
      const red = output(page).locator('.log-stderr span.ansi-fg-1', { hasText: 'red error text' })
      assert.equal(await red.evaluate((el) => getComputedStyle(el).color), 'rgb(255, 123, 114)')
      assert.equal(await output(page).locator('.log-line', { hasText: 'green start' }).locator('.log-text').textContent(), 'green start plain')

      // New lines arrive while paused: the view stays where the operator is.
      const before = await shownLines(page)
      release('live-1')
      await waitUntil(async () => (await shownLines(page)) >= before + 21, 30_000, 'the next lines')
      assert.equal(await page.evaluate(() => document.querySelector('[aria-label="Run output"]')!.scrollTop), 0, 'paused: not scrolled')
      await green.waitFor()
      // The button resumes following: back at the tail.
      await page.getByRole('button', { name: 'Follow' }).click()
      assert.equal(await page.getByRole('button', { name: 'Follow' }).getAttribute('aria-pressed'), 'true')
      await output(page).getByText('needle in the output').waitFor()
      assert.ok(await atEnd(page))

      // Search: count, next/previous, the match highlighted in the visible rows.
      const search = page.getByRole('searchbox', { name: 'Search output' })
      await search.fill('BUILD LINE 15')
      await page.getByRole('status').filter({ hasText: '11 matches' }).waitFor()
      await search.press('Enter')
      await page.getByRole('status').filter({ hasText: '1 of 11' }).waitFor()
      assert.equal(await page.getByRole('button', { name: 'Follow' }).getAttribute('aria-pressed'), 'false', 'jumping to a match pauses following')
      const current = output(page).locator('.log-current mark.log-match')
      assert.equal(await current.textContent(), 'build line 15')
      await page.getByRole('button', { name: 'Next match' }).click()
      await page.getByRole('status').filter({ hasText: '2 of 11' }).waitFor()
      assert.equal(await output(page).locator('.log-current .log-text').textContent(), 'build line 150')
      await page.getByRole('button', { name: 'Previous match' }).click()
      await page.getByRole('button', { name: 'Previous match' }).click()
      await page.getByRole('status').filter({ hasText: '11 of 11' }).waitFor()
      await screenshot(page, 'runs-view-search')
      await search.fill('')

      // The stream filter hides stderr.
      const all = await shownLines(page)
      await page.getByRole('checkbox', { name: 'stderr' }).uncheck()
      await waitUntil(async () => (await shownLines(page)) === all - 2, 5000, 'stderr hidden')
      await page.keyboard.press('Escape')
      await output(page).focus()
      await page.keyboard.press('Home')
      await output(page).getByText('green start').waitFor()
      assert.equal(await output(page).getByText('red error text').count(), 0)
      assert.equal(await output(page).locator('.log-stderr').count(), 0)
      await page.getByRole('checkbox', { name: 'stderr' }).check()
      await output(page).getByText('red error text').waitFor()

      // The run finishes; the grid follows; a cell shows its step run's output alone.
      release('live-2')
      await badge(page).filter({ hasText: 'succeeded' }).waitFor({ timeout: 30_000 })
      await page.getByRole('status').filter({ hasText: 'Complete' }).waitFor()
      await page.getByRole('button', { name: cellName('report', 'succeeded') }).click()
      await page.getByText('Showing step report').waitFor()
      await waitUntil(async () => (await shownLines(page)) === 1, 5000, 'only the report step')
      await output(page).getByText('report step output').waitFor()
      assert.equal(new URL(page.url()).searchParams.has('step'), true, 'the selection is in the URL')
      await page.getByRole('heading', { name: 'Selected step' }).waitFor()
      await page.getByRole('button', { name: 'Show all output' }).click()
      await waitUntil(async () => (await shownLines(page)) === all + 2, 5000, 'all output again')

      // Download: the whole stored output as a text file.
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download output' }).click()])
      const file = readFileSync((await download.path())!, 'utf8')
      assert.match(download.suggestedFilename(), /^run-[0-9a-f]{8}\.log$/)
      assert.ok(file.includes(`==> build on ${target.name} (attempt 1) <==`), file.slice(0, 200))
      assert.ok(file.includes('\x1b[1;32mgreen start'), 'the raw output, colour codes included')
      for (const text of ['build line 320', 'needle in the output', 'final line', 'red error text', '==> report on', 'report step output']) assert.ok(file.includes(text), text)

      await setTheme(page, 'dark')
      await assertAccessible(page, 'run view finished (dark)')
      await screenshot(page, 'runs-view-dark')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('a reload mid-run and a dropped connection resume the stream without a duplicate or a lost line', async () => {
    const jobId = await api.job({
      name: 'reload me',
      targets: onAgent(),
      steps: [exec('count', ['for i in $(seq 1 500); do echo "reload line $i"; done', waitFor('reload-1'), 'for i in $(seq 501 700); do echo "reload line $i"; done', waitFor('reload-2'), 'for i in $(seq 701 1000); do echo "reload line $i"; done'].join('\n'))],
    })
    const runId = await api.run(jobId)
    // The page talks to the controller through a relay whose connections the test can cut.
    const proxy = await CuttableProxy.start(Number(new URL(ui.base).port))
    const viaProxy = `https://127.0.0.1:${proxy.port}`
    const { context, page, problems } = await openAs(1280, undefined, `/runs/${runId}`, viaProxy)
    try {
      await output(page).getByText('reload line 500', { exact: true }).waitFor()
      await page.reload()
      await output(page).getByText('reload line 500', { exact: true }).waitFor()
      await page.getByRole('status').filter({ hasText: 'Live' }).waitFor()
      assert.equal(await shownLines(page), 500)
      release('reload-1')
      await output(page).getByText('reload line 700', { exact: true }).waitFor()
      // The connection drops; lines come while it is down; EventSource reconnects with Last-Event-ID.
      assert.ok(proxy.cut() > 0, 'connections were cut')
      await page.getByRole('status').filter({ hasText: 'Reconnecting…' }).waitFor()
      release('reload-2')
      await api.waitForRun(runId)
      await page.getByRole('status').filter({ hasText: 'Complete' }).waitFor({ timeout: 30_000 })
      assert.equal(await shownLines(page), 1000, 'every line exactly once')
      const search = page.getByRole('searchbox', { name: 'Search output' })
      await search.fill('reload line 1000')
      await page.getByRole('status').filter({ hasText: /^1 match$/ }).waitFor()
      await search.fill('reload line 70')
      await page.getByRole('status').filter({ hasText: '11 matches' }).waitFor()
      await assertClean(page, problems, (t) => /ERR_|\/events/.test(t))
    } finally {
      await context.close()
      await proxy.close()
    }
  })

  test('cancel a long run from its button (operator+); a viewer sees no write buttons; a refused cancel shows the error', async () => {
    const jobId = await api.job({ name: 'long sleep', targets: onAgent(), steps: [exec('sleep', 'echo "sleeping"; sleep 600')] })
    const runId = await api.run(jobId)
    await api.waitForRun(runId, (r) => r.status === 'running')

    const viewer = await openAs(1280, 'runs-viewer')
    try {
      await viewer.page.goto(`${ui.base}/runs/${runId}`)
      await badge(viewer.page).filter({ hasText: 'running' }).waitFor()
      await output(viewer.page).getByText('sleeping').waitFor()
      assert.equal(await viewer.page.getByRole('button', { name: 'Cancel run' }).count(), 0)
      await assertClean(viewer.page, viewer.problems)
    } finally {
      await viewer.context.close()
    }

    const { context, page, problems } = await openAs()
    try {
      await page.goto(`${ui.base}/runs/${runId}`)
      await badge(page).filter({ hasText: 'running' }).waitFor()
      // A refused cancel: the error is shown, the page stays usable.
      await page.route(`**/api/v1/runs/${runId}/cancel`, (route) => route.fulfill({ status: 409, contentType: 'application/json', body: JSON.stringify({ error: { code: 'CONFLICT', message: 'forced conflict for the test', request_id: 'req-test-1' } }) }))
      await page.getByRole('button', { name: 'Cancel run' }).click()
      await page.getByRole('button', { name: 'Yes, cancel run' }).click()
      const alert = page.getByRole('alert').filter({ hasText: 'Could not cancel the run' })
      await alert.waitFor()
      assert.match((await alert.textContent()) ?? '', /CONFLICT.*forced conflict for the test/)
      await assertAccessible(page, 'run view with a refused cancel')
      await screenshot(page, 'runs-view-cancel-refused')
      await page.unroute(`**/api/v1/runs/${runId}/cancel`)
      // Escape closes the confirmation and gives focus back to the button.
      await page.keyboard.press('Escape')
      await page.getByRole('button', { name: 'Cancel run' }).waitFor()
      assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel run')
      await page.getByRole('button', { name: 'Cancel run' }).click()
      await page.getByRole('button', { name: 'Yes, cancel run' }).click()
      await badge(page).filter({ hasText: 'cancelled' }).waitFor({ timeout: 30_000 })
      assert.equal((await api.getRun(runId)).status, 'cancelled')
      await page.getByRole('button', { name: cellName('sleep', 'cancelled') }).waitFor()
      assert.equal(await page.getByRole('button', { name: 'Cancel run' }).count(), 0)
      await page.getByRole('button', { name: 'Retry failed' }).waitFor()
      await assertClean(page, problems, (t) => t.includes('status of 409'))
    } finally {
      await context.close()
    }
  })

  test('retry failed on a failed run starts a retry run and opens it; a viewer cannot', async () => {
    const jobId = await api.job({ name: 'fails once', targets: onAgent(), steps: [exec('probe', 'echo "about to fail" >&2; exit 3')] })
    const runId = await api.run(jobId)
    assert.equal((await api.waitForRun(runId)).status, 'failed')

    const viewer = await openAs(1280, 'runs-viewer')
    try {
      await viewer.page.goto(`${ui.base}/runs/${runId}`)
      await badge(viewer.page).filter({ hasText: 'failed' }).waitFor()
      assert.equal(await viewer.page.getByRole('button', { name: 'Retry failed' }).count(), 0)
    } finally {
      await viewer.context.close()
    }

    const { context, page, problems } = await openAs()
    try {
      await page.goto(`${ui.base}/runs/${runId}`)
      await badge(page).filter({ hasText: 'failed' }).waitFor()
      await output(page).locator('.log-stderr', { hasText: 'about to fail' }).waitFor()
      await page.getByRole('button', { name: cellName('probe', 'failed') }).click()
      await page.getByText('code 3', { exact: true }).waitFor()
      await page.getByRole('button', { name: 'Retry failed' }).click()
      await page.waitForURL((u) => u.pathname.startsWith('/runs/') && !u.pathname.endsWith(runId))
      const retryId = new URL(page.url()).pathname.split('/').at(-1)!
      const retry = await api.getRun(retryId)
      assert.equal(retry.retry_of, runId)
      assert.equal(retry.trigger, 'retry')
      await page.getByText('Retry of').waitFor()
      await page.getByRole('link', { name: `run ${runId.slice(0, 8)}` }).waitFor()
      await badge(page).filter({ hasText: 'failed' }).waitFor({ timeout: 30_000 })
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('200,000 output lines: the viewer keeps a window of rows, scrolls without freezing (frame times recorded) and searches', async () => {
    const jobId = await api.job({ name: 'huge output', steps: [{ id: 'pause', type: 'wait', seconds: 0.05 }] })
    const runId = await api.run(jobId)
    await api.waitForRun(runId)
    const [step] = await api.steps(runId)
    const t0 = Date.now()
    await seedOutput(ui.controller.ctx, step.id, 200_000, (i) => (i % 10 === 0 ? `\x1b[36m[${String(i).padStart(6, '0')}]\x1b[0m line ${i} of the huge log — ok` : `[${String(i).padStart(6, '0')}] line ${i} of the huge log — ok`))
    console.log(`# seeded 200,000 lines in ${Date.now() - t0} ms`)

    const { context, page, problems } = await openAs()
    try {
      const t1 = Date.now()
      await page.goto(`${ui.base}/runs/${runId}`)
      await page.getByRole('status').filter({ hasText: 'Complete' }).waitFor({ timeout: 120_000 })
      await waitUntil(async () => (await shownLines(page)) === 200_001, 60_000, 'every line loaded')
      console.log(`# 200,001 lines loaded and shown in ${Date.now() - t1} ms`)
      assert.ok(await atEnd(page), 'follows to the tail')
      await output(page).getByText('line 199999 of the huge log').waitFor()

      const stats = await scrollAndMeasure(page, 240)
      console.log(`# frame time while scrolling 200,001 lines (${stats.frames} frames): p50 ${stats.p50.toFixed(1)} ms, p95 ${stats.p95.toFixed(1)} ms, max ${stats.max.toFixed(1)} ms; at most ${stats.maxRows} rows in the DOM`)
      assert.ok(stats.maxRows > 10 && stats.maxRows < 300, `only a window of rows is in the DOM (${stats.maxRows})`)
      assert.ok(stats.max < 1000, `no frame froze the page (max ${stats.max} ms)`)
      assert.ok((await output(page).locator('.log-line').count()) < 300)

      const search = page.getByRole('searchbox', { name: 'Search output' })
      await search.fill('line 123456 of')
      await page.getByRole('status').filter({ hasText: /^1 match$/ }).waitFor()
      await search.press('Enter')
      await output(page).locator('.log-current mark.log-match', { hasText: 'line 123456 of' }).waitFor()
      await output(page).locator('.log-line', { hasText: 'line 123450 of' }).locator('span.ansi-fg-6').waitFor()
      await assertAccessible(page, 'run view with 200k lines')
      await screenshot(page, 'runs-view-200k')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('an unknown run shows the API error; the page and the navigation stay usable', async () => {
    const { context, page, problems } = await openAs()
    try {
      await page.goto(`${ui.base}/runs/00000000-0000-4000-8000-000000000000`)
      const alert = page.getByRole('alert').filter({ hasText: 'Could not load the run' })
      await alert.waitFor()
      assert.match((await alert.textContent()) ?? '', /NOT_FOUND/)
      await assertAccessible(page, 'unknown run')
      await screenshot(page, 'runs-view-not-found')
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Runs' }).click()
      await page.getByRole('heading', { name: 'Runs', exact: true }).waitFor()
      await assertClean(page, problems, (t) => t.includes('status of 404'))
    } finally {
      await context.close()
    }
  })
})

describe('runs: list', { skip: skipUi }, () => {
  test('filters (status, job, trigger, time), live statuses, load more, links; light, dark and phone', async () => {
    const waitJob = await api.job({ name: 'many waits', steps: [{ id: 'nap', type: 'wait', seconds: 0.01 }] })
    const ids: string[] = []
    for (let i = 0; i < 52; i++) ids.push(await api.run(waitJob))
    const failJob = await api.job({ name: 'list failure', targets: onAgent(), steps: [exec('boom', 'exit 4')] })
    const failed = await api.run(failJob)
    for (const id of [...ids, failed]) await api.waitForRun(id)
    mark('list: 53 runs finished')
    const retried = await api.call<{ run_id: string }>('POST', `/api/v1/runs/${failed}/retry`, undefined, 202)
    await api.waitForRun(retried.run_id)
    const total = (await api.call<{ items: unknown[] }>('GET', '/api/v1/runs?limit=500', undefined, 200)).items.length

    const { context, page, problems } = await openAs()
    try {
      await page.goto(`${ui.base}/runs`)
      mark('list: opened')
      const rows = page.locator('table.runs-table tbody tr')
      await waitUntil(async () => (await rows.count()) === 50, 10_000, 'the first page')
      await assertAccessible(page, 'runs list (light)')
      await screenshot(page, 'runs-list')
      await page.getByRole('button', { name: 'Load more runs' }).click()
      await waitUntil(async () => (await rows.count()) === total, 10_000, 'the next page')
      await page.getByText(`All ${total} runs shown.`).waitFor()

      mark('list: load more done')
      // Filters go into the URL and the API query.
      await page.getByLabel('Job').selectOption({ label: 'list failure' })
      await waitUntil(async () => (await rows.count()) === 2, 10_000, 'the job filter')
      await page.getByLabel('Status').selectOption('failed')
      await waitUntil(async () => new URL(page.url()).searchParams.get('status') === 'failed', 5000, 'status in the URL')
      await waitUntil(async () => (await rows.count()) === 2, 10_000, 'failed runs of the job')
      for (const text of await rows.locator('td:nth-child(2)').allTextContents()) assert.equal(text, 'failed')
      await page.getByLabel('Trigger').selectOption('retry')
      await waitUntil(async () => (await rows.count()) === 1, 10_000, 'the failed retry')
      await rows.first().getByRole('link').click()
      await page.waitForURL(`**/runs/${retried.run_id}`)
      await page.goBack()
      await waitUntil(async () => (await rows.count()) === 1, 10_000, 'the filtered list after going back')
      assert.equal(await page.getByLabel('Trigger').inputValue(), 'retry')
      assert.equal(await page.getByLabel('Job').inputValue(), failJob)
      await page.getByLabel('Time').selectOption('1h')
      await waitUntil(async () => new URL(page.url()).searchParams.get('range') === '1h', 5000, 'range in the URL')
      await waitUntil(async () => (await rows.count()) === 1, 10_000, 'the time filter')
      await page.getByLabel('Status').selectOption('succeeded')
      await page.getByText('No runs match these filters').waitFor()
      await assertAccessible(page, 'runs list, nothing matches')
      await screenshot(page, 'runs-list-no-match')
      await page.getByRole('button', { name: 'Clear filters' }).first().click()
      await waitUntil(async () => (await rows.count()) === 50, 10_000, 'unfiltered again')
      mark('list: filters done')
      // Live: a new run appears at the top and its status follows without a reload.
      const liveJob = await api.job({ name: 'list live', targets: onAgent(), steps: [exec('hold', waitFor('list-1'))] })
      const liveRun = await api.run(liveJob)
      const liveRow = rows.filter({ has: page.getByRole('link', { name: `list live ${liveRun.slice(0, 8)}` }) })
      await liveRow.getByText('running').waitFor({ timeout: 20_000 })
      release('list-1')
      await liveRow.getByText('succeeded').waitFor({ timeout: 20_000 })

      await setTheme(page, 'dark')
      await assertAccessible(page, 'runs list (dark)')
      await screenshot(page, 'runs-list-dark')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('a failing list shows the API error and recovers with Try again; the phone layout scrolls the table', async () => {
    const jobId = await api.job({
      name: 'phone view',
      targets: onAgent(),
      steps: [exec('hello', `printf '\\033[33mwarning:\\033[0m a rather long line of output that is wider than a phone screen, so it scrolls sideways\\n'; echo done; echo oops >&2`), exec('bye', 'echo bye')],
    })
    const runId = await api.run(jobId)
    await api.waitForRun(runId)
    const { context, page, problems } = await openAs(390)
    try {
      await page.route('**/api/v1/runs?*', (route) => route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: { code: 'INTERNAL', message: 'forced failure for the test', request_id: 'req-test-2' } }) }))
      await page.goto(`${ui.base}/runs`)
      const alert = page.getByRole('alert').filter({ hasText: 'Could not load runs' })
      await alert.waitFor()
      assert.match((await alert.textContent()) ?? '', /INTERNAL.*forced failure.*req-test-2/)
      await assertAccessible(page, 'runs list error')
      await screenshot(page, 'runs-list-error-phone')
      await page.unroute('**/api/v1/runs?*')
      await page.getByRole('button', { name: 'Try again' }).click()
      await page.locator('table.runs-table tbody tr').first().waitFor()
      assert.ok(await fitsWidth(page, '.runs-page'), 'the list page does not overflow at 390 px (the table scrolls inside its frame)')
      await assertAccessible(page, 'runs list at 390 px')
      await screenshot(page, 'runs-list-phone')
      await page.goto(`${ui.base}/runs/${runId}`)
      await page.getByRole('status').filter({ hasText: 'Complete' }).waitFor()
      assert.ok(await fitsWidth(page, '.run-page'), 'the run view does not overflow at 390 px')
      await assertAccessible(page, 'run view at 390 px')
      await screenshot(page, 'runs-view-phone')
      await setTheme(page, 'dark')
      await assertAccessible(page, 'run view at 390 px (dark)')
      await screenshot(page, 'runs-view-phone-dark')
      await assertClean(page, problems, (t) => t.includes('status of 500'))
    } finally {
      await context.close()
    }
  })
})
