import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { AgentProcess } from '../harness/agents.ts'
import { sshdUnavailable, startSshd, type TestSshd } from '../harness/sshd.ts'
import { runShownEnrollCommand, agentStateDir } from './agents-helpers.ts'
import { adminToken, apiCall, assertAccessible, assertClean, launchBrowser, openPage, screenshot, signIn, skipUi, startUiController, type UiController } from './harness.ts'

/*
 * The acceptance story, in one browser session against a real controller, a real sshd and
 * a real agent process: sign in, create a credential and an SSH target, test the connection, enrol
 * an agent with the command the wizard shows, build a two-step job, run it on both hosts and watch
 * output arrive before the run ends, cancel a long run, schedule the job and see its preview, and
 * read it all back in the audit log. Every page on the way is screenshotted and checked with axe.
 */

const noSshd = sshdUnavailable()
const TAG = 'role=acceptance'

let ui: UiController
let browser: Browser
let token: string
let sshd: TestSshd
let agent: AgentProcess | undefined
// The job's first step waits for this file, so "before the run ends" does not depend on timing;
// world-readable, since the SSH side runs as sshd's throw-away user.
let gateDir: string
const gate = () => path.join(gateDir, 'open')

before(async () => {
  if (skipUi || noSshd) return
  ui = await startUiController()
  browser = await launchBrowser()
  token = await adminToken(ui.base)
  sshd = await startSshd()
  gateDir = mkdtempSync(path.join(tmpdir(), 'opsc-accept-'))
  chmodSync(gateDir, 0o755)
})
after(async () => {
  await agent?.kill('SIGTERM')
  await browser?.close()
  await ui?.stop()
  await sshd?.stop()
  if (gateDir) rmSync(gateDir, { recursive: true, force: true })
})

const api = async <T = any>(method: string, p: string, body?: unknown): Promise<T> => {
  const res = await apiCall(ui.base, method, p, token, body)
  assert.ok(res.status < 300, `${method} ${p}: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body as T
}
const idFromUrl = (page: Page) => new URL(page.url()).pathname.split('/').pop()!

/** Every page of the story is checked the same way: axe, then a screenshot. */
async function checkpoint(page: Page, name: string) {
  await assertAccessible(page, name)
  await page.evaluate('window.scrollTo(0, 0)')
  await screenshot(page, `acceptance-${name}`)
}

describe('acceptance: the operator story end to end', { skip: skipUi || noSshd }, () => {
  test('sign in → credential + SSH target → test connection → enrol an agent → two-step job → live run → cancel → schedule → audit log', async () => {
    const { context, page, problems } = await openPage(browser, { width: 1280, height: 900 })
    try {
      // 1. Sign in.
      await signIn(page, ui.base)
      await page.getByRole('heading', { name: 'Dashboard' }).waitFor()
      await checkpoint(page, '01-dashboard')

      // 2. A credential for the SSH host, through its form.
      await page.getByRole('link', { name: 'Credentials' }).click()
      await page.getByText('No credentials yet').waitFor()
      await page.getByRole('link', { name: 'New credential' }).first().click()
      await page.getByRole('heading', { name: 'New credential' }).waitFor()
      await page.getByLabel('Name', { exact: true }).fill('lab-login')
      await page.getByLabel('Type', { exact: true }).selectOption('ssh_password')
      await page.getByLabel('Username').fill(sshd.user)
      await page.getByLabel('Password', { exact: true }).fill(sshd.password)
      await checkpoint(page, '02-credential-new')
      await page.getByRole('button', { name: 'Create credential' }).click()
      await page.getByRole('heading', { name: 'lab-login' }).waitFor()
      assert.equal(await page.getByText(sshd.password).count(), 0, 'the password is never shown')
      await checkpoint(page, '03-credential')
      const credentialId = idFromUrl(page)

      // 3. The SSH target that uses it, then Test connection.
      await page.getByRole('link', { name: 'Targets' }).first().click()
      await page.getByRole('link', { name: 'New target' }).first().click()
      await page.getByRole('heading', { name: 'New target' }).waitFor()
      await page.getByLabel('Name', { exact: true }).fill('lab-ssh')
      await page.getByLabel('Address', { exact: true }).fill('127.0.0.1')
      await page.getByRole('button', { name: 'Add tag' }).click()
      await page.getByLabel('Tag 1 key').fill('role')
      await page.getByLabel('Tag 1 value').fill('acceptance')
      await page.getByLabel('SSH port').fill(String(sshd.port))
      await page.getByLabel('SSH credential').selectOption(credentialId)
      await checkpoint(page, '04-target-new')
      await page.getByRole('button', { name: 'Create target' }).click()
      await page.getByRole('heading', { name: 'lab-ssh' }).waitFor()
      await page.getByRole('button', { name: 'Test connection' }).click()
      const passed = page.locator('.test-result.passed')
      await passed.waitFor({ timeout: 60_000 })
      assert.match((await passed.getByRole('heading').textContent()) ?? '', /^Connected over SSH in \d+ ms$/)
      await checkpoint(page, '05-target-tested')

      // 4. An agent, enrolled with exactly the command the wizard shows, then started as the service would be.
      await page.getByRole('link', { name: 'Agents' }).click()
      await page.getByRole('link', { name: 'Enroll an agent' }).first().click()
      await page.getByLabel('Name').fill('acceptance rollout')
      await page.getByLabel('Tags').fill(TAG)
      await page.getByRole('button', { name: 'Create token' }).click()
      const command = (await page.getByTestId('linux-enroll-command').textContent())!.trim()
      await checkpoint(page, '06-agent-wizard')
      const stateDir = agentStateDir()
      const agentId = await runShownEnrollCommand(command, stateDir)
      agent = AgentProcess.start(stateDir)
      await page.locator('[data-testid="enroll-watch"][data-state="connected"]').waitFor({ timeout: 60_000 })
      await checkpoint(page, '07-agent-connected')
      await page.getByRole('link', { name: 'Done' }).click()
      await page.locator(`tr[data-agent-id="${agentId}"] [data-status="online"]`).waitFor({ timeout: 30_000 })
      await checkpoint(page, '08-agents')

      // 5. A two-step job in the builder: both steps from the Bash template, on every host tagged for this story.
      await page.getByRole('link', { name: 'Jobs' }).click()
      await page.getByRole('link', { name: 'New job' }).click()
      await page.getByRole('heading', { name: 'New job' }).waitFor()
      await page.getByLabel('Name (required)').fill('Acceptance rollout')
      const palette = page.getByRole('region', { name: 'Step palette' })
      await palette.getByRole('button', { name: /^Bash command/ }).click()
      await palette.getByRole('button', { name: /^Bash command/ }).click()
      const commands = page.getByLabel('Command (required)')
      assert.equal(await commands.count(), 2)
      await commands.nth(0).fill(`echo "rollout started on $(hostname)"\nwhile [ ! -e ${gate()} ]; do sleep 0.1; done\necho "rollout finished"`)
      await commands.nth(1).fill('echo "report: all good"')
      await page.getByLabel('Default targets (selector)').fill(TAG)
      await page.getByText('2 targets match now').waitFor({ timeout: 30_000 })
      await checkpoint(page, '09-job-builder')
      await page.getByRole('button', { name: 'Save' }).click()
      await page.getByText('Saved as version 1.').waitFor()
      const job = (await api<{ items: { id: string; name: string }[] }>('GET', '/api/v1/jobs')).items.find((j) => j.name === 'Acceptance rollout')!
      assert.deepEqual((await api<{ steps: { type: string }[] }>('GET', `/api/v1/jobs/${job.id}`)).steps.map((s) => s.type), ['exec', 'exec'])

      // 6. Run it: plan first, then launch; output arrives while the run is still running.
      await page.goto(`${ui.base}/jobs/${job.id}`)
      await page.getByRole('button', { name: 'Run', exact: true }).click()
      const dialog = page.getByRole('dialog', { name: 'Run Acceptance rollout' })
      await dialog.getByRole('button', { name: 'Preview plan' }).click()
      const plan = dialog.getByRole('region', { name: 'Plan', exact: true })
      // Both hosts, one reached agentlessly over SSH, one through its agent.
      await plan.getByText('2 targets via ssh, agent').first().waitFor()
      await checkpoint(page, '10-run-plan')
      await dialog.getByRole('button', { name: 'Launch run' }).click()
      await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/)
      const runId = idFromUrl(page)
      const output = page.getByRole('log', { name: 'Run output' })
      await output.getByText('rollout started on').first().waitFor({ timeout: 60_000 })
      assert.equal((await api<{ status: string }>('GET', `/api/v1/runs/${runId}`)).status, 'running', 'output is live: the run has not ended')
      await checkpoint(page, '11-run-live')
      writeFileSync(gate(), '')
      await page.getByTestId('run-status').filter({ hasText: 'succeeded' }).waitFor({ timeout: 60_000 })
      await output.getByText('report: all good').first().waitFor()
      const finished = await api<{ status: string; targets?: unknown }>('GET', `/api/v1/runs/${runId}`)
      assert.equal(finished.status, 'succeeded')
      await checkpoint(page, '12-run-succeeded')

      // 7. A long run (the gate is shut again), cancelled from its page.
      rmSync(gate())
      const longRun = (await api<{ run_id: string }>('POST', `/api/v1/jobs/${job.id}/run`, {})).run_id
      await page.goto(`${ui.base}/runs/${longRun}`)
      await output.getByText('rollout started on').first().waitFor({ timeout: 60_000 })
      await page.getByRole('button', { name: 'Cancel run' }).click()
      await page.getByRole('button', { name: 'Yes, cancel run' }).click()
      await page.getByTestId('run-status').filter({ hasText: 'cancelled' }).waitFor({ timeout: 60_000 })
      assert.equal((await api<{ status: string }>('GET', `/api/v1/runs/${longRun}`)).status, 'cancelled')
      await checkpoint(page, '13-run-cancelled')

      // 8. A schedule for the job, with the server's next fires shown before saving.
      await page.getByRole('link', { name: 'Schedules' }).click()
      await page.getByRole('link', { name: 'New schedule' }).first().click()
      await page.getByRole('heading', { name: 'New schedule' }).waitFor()
      await page.getByLabel('Name', { exact: true }).fill('Acceptance every 30 min')
      await page.getByLabel('Job', { exact: true }).selectOption({ label: 'Acceptance rollout' })
      await page.getByLabel('Repeat', { exact: true }).selectOption({ label: 'Every N minutes' })
      await page.getByLabel('Every (minutes)').fill('30')
      await page.getByLabel('Time zone', { exact: true }).fill('Europe/Berlin')
      const preview = (await api<{ fires: { at_utc: string }[] }>('GET', `/api/v1/schedules/preview?${new URLSearchParams({ cron: '*/30 * * * *', tz: 'Europe/Berlin', count: '5' })}`)).fires
      const fires = page.getByRole('list', { name: 'Next fires' })
      await page.waitForFunction(
        (first) => [...document.querySelectorAll('[aria-label="Next fires"] li')].some((li) => li.getAttribute('data-at') === first),
        preview[0]!.at_utc,
        { timeout: 30_000 },
      )
      assert.ok((await fires.locator('li').count()) >= 3, 'several fires are previewed')
      await checkpoint(page, '14-schedule-new')
      await page.getByRole('button', { name: 'Save schedule' }).click()
      await page.getByRole('heading', { name: 'Acceptance every 30 min' }).waitFor()
      const schedule = await api<{ cron: string; timezone: string; job_id: string }>('GET', `/api/v1/schedules/${idFromUrl(page)}`)
      assert.deepEqual([schedule.cron, schedule.timezone, schedule.job_id], ['*/30 * * * *', 'Europe/Berlin', job.id])
      await checkpoint(page, '15-schedule')

      // 9. The audit log tells the story, newest first, and its chain checks out.
      await page.getByRole('link', { name: 'Audit log' }).click()
      await page.waitForFunction(() => document.querySelector('[data-testid="chain-badge"]')?.getAttribute('data-status') === 'verified', undefined, { timeout: 30_000 })
      const story = ['schedules.create', 'runs.cancel', 'jobs.run', 'jobs.run', 'jobs.create', 'agents.enroll', 'agents.enrollment_tokens.create', 'targets.test_ssh', 'targets.create', 'credentials.create']
      const stored = (await api<{ items: { action: string }[] }>('GET', '/api/v1/audit?limit=100')).items.map((e) => e.action)
      assert.deepEqual(stored.slice(0, story.length), story, 'every step of the story is audited, in order')
      await page.locator('button.audit-row').nth(story.length - 1).waitFor()
      const shown = (await page.locator('button.audit-row .audit-action').allTextContents()).map((t) => t.trim())
      assert.deepEqual(shown.slice(0, story.length), story, 'the page lists what the API stored, newest first')
      await checkpoint(page, '16-audit')

      await assertClean(page, problems)
    } catch (err) {
      // Where the story stopped, for whoever reads the failure.
      await screenshot(page, 'acceptance-failure').catch(() => {})
      throw err
    } finally {
      await context.close()
    }
  })
})
