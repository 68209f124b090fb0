import assert from 'node:assert/strict'
import { hostname } from 'node:os'
import { after, before, describe, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { insertUser } from '../../controller/src/users/service.ts'
import { AgentProcess } from '../harness/agents.ts'
import { assertNoOverflow, enrolledAgent, failRequests, forcedFailure, runShownEnrollCommand, agentStateDir, setTheme, shot } from './agents-helpers.ts'
import { adminToken, apiCall, assertAccessible, assertClean, launchBrowser, openPage, signIn, skipUi, startUiController, type UiController } from './harness.ts'

// Agents: the live list, the detail page with facts and revoke, and the enrol wizard whose shown
// Linux command is run for real against the controller, with a real agent process connecting.

let ui: UiController
let browser: Browser
let token: string
const agents: AgentProcess[] = []
const PASSWORD = 'agents ui test passphrase 3Rv8'
/** The agent CLI reports the machine's host name at enrollment: the agent and target are named after it. */
const HOST = hostname()

before(async () => {
  if (skipUi) return
  ui = await startUiController()
  browser = await launchBrowser()
  token = await adminToken(ui.base)
  const { ctx } = ui.controller
  await insertUser(ctx.db, { username: 'otto', password: PASSWORD, role: 'operator', must_change_password: false }, ctx.clock())
  await insertUser(ctx.db, { username: 'vic', password: PASSWORD, role: 'viewer', must_change_password: false }, ctx.clock())
})
after(async () => {
  await Promise.all(agents.map((a) => a.kill('SIGKILL')))
  await browser?.close()
  await ui?.stop()
})

const row = (page: Page, agentId: string) => page.locator(`tr[data-agent-id="${agentId}"]`)

describe('agents UI', { skip: skipUi }, () => {
  test('the wizard creates a token and shows the commands; the shown Linux command enrols a real agent, the wizard turns green, the list follows it online and offline', async () => {
    const { context, page, problems } = await openPage(browser)
    try {
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: ui.base })
      await signIn(page, ui.base)
      await page.goto(`${ui.base}/agents`)
      await page.getByText('No agents enrolled yet').waitFor()
      await assertAccessible(page, 'the empty agents list')
      await shot(page, 'agents-empty')

      await page.getByRole('link', { name: 'Enroll an agent' }).first().click()
      await page.getByRole('heading', { name: 'Enroll an agent' }).waitFor()
      await assertAccessible(page, 'the enrol form')
      await shot(page, 'agents-enroll-form')

      // The server's rule, shown under its field.
      await page.getByLabel('Hosts that may use it').fill('0')
      await page.getByRole('button', { name: 'Create token' }).click()
      const usesField = page.locator('.field', { has: page.getByLabel('Hosts that may use it') })
      await usesField.locator('.field-error').waitFor()
      assert.equal(await page.getByLabel('Hosts that may use it').getAttribute('aria-invalid'), 'true')
      assert.match((await usesField.locator('.field-error').textContent()) ?? '', /1|least|small/i)
      await assertAccessible(page, 'the enrol form with a server error')

      assert.equal(await page.getByLabel('Expires in').inputValue(), '86400', 'a day, shown and sent')
      await page.getByLabel('Expires in').selectOption({ label: '7 days' })
      await page.getByLabel('Name').fill('ui wizard rollout')
      await page.getByLabel('Hosts that may use it').fill('1')
      await page.getByLabel('Tags').fill('env=ui-test, role=web')
      await page.getByRole('button', { name: 'Create token' }).click()
      await page.getByLabel('Hosts that may use it').waitFor({ state: 'detached' })

      const enroll = page.getByTestId('linux-enroll-command')
      await enroll.waitFor()
      const command = (await enroll.textContent())!.trim()
      const m = /^sudo opsconductor-agent enroll --controller (\S+) --token (opsc_et_\S+) --ca-fingerprint (sha256:[0-9a-f]{64})$/.exec(command)
      assert.ok(m, `the Linux enroll command: ${command}`)
      assert.equal(m[1], `127.0.0.1:${ui.grpcPort}`, 'the host the admin reached, the gRPC port')
      assert.equal(m[3], ui.controller.caFingerprint)
      const windows = (await page.getByTestId('windows-install-command').textContent())!.trim()
      assert.equal(windows, `.\\install-agent.ps1 -Controller 127.0.0.1:${ui.grpcPort} -Token ${m[2]} -CaFingerprint ${m[3]}`)
      assert.match((await page.getByTestId('linux-install-command').textContent()) ?? '', /^sudo apt install \.\/opsconductor-agent_\S+_amd64\.deb$/)
      assert.equal((await page.getByTestId('linux-start-command').textContent())?.trim(), 'sudo systemctl enable --now opsconductor-agent')
      assert.match((await page.getByText('Windows (service)').locator('..').textContent()) ?? '', /Windows agent package/)

      // The copy button puts exactly the command on the clipboard.
      await page.getByRole('button', { name: 'Copy: Enroll with this controller' }).click()
      await page.getByText('Copied').first().waitFor()
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), command)

      const watch = page.getByTestId('enroll-watch')
      assert.equal(await watch.getAttribute('data-state'), 'waiting')
      await page.getByText('Waiting for an agent to enroll with this token').waitFor()
      // The token the API stored: what the form said.
      const tokens = await apiCall(ui.base, 'GET', '/api/v1/agents/enrollment-tokens', token)
      const stored = (tokens.body as { items: { name: string; max_uses: number; tags: Record<string, string>; expires_at: string }[] }).items[0]!
      assert.deepEqual([stored.name, stored.max_uses, stored.tags], ['ui wizard rollout', 1, { env: 'ui-test', role: 'web' }])
      const days = (Date.parse(stored.expires_at) - Date.now()) / 86_400_000
      assert.ok(days > 6.9 && days <= 7, `expires in 7 days (${days})`)
      await assertAccessible(page, 'the wizard with the commands')
      await shot(page, 'agents-enroll-commands')

      // The operator pastes the command on the host.
      const stateDir = agentStateDir()
      const agentId = await runShownEnrollCommand(command, stateDir)
      await page.locator('[data-testid="enroll-watch"][data-state="enrolled"]').waitFor({ timeout: 30_000 })
      await page.getByText('Enrolled — waiting for the agent to connect').waitFor()

      // …and starts the service.
      const agent = AgentProcess.start(stateDir)
      agents.push(agent)
      await agent.waitFor('agent.session_ready')
      await page.locator('[data-testid="enroll-watch"][data-state="connected"]').waitFor({ timeout: 30_000 })
      assert.match((await watch.textContent()) ?? '', new RegExp(`Agent ${escape(HOST)} is connected`))
      assert.equal(await watch.getByRole('link', { name: HOST }).getAttribute('href'), `/agents/${agentId}`)
      await assertAccessible(page, 'the wizard with a connected agent')
      await shot(page, 'agents-enroll-connected')
      await setTheme(page, 'dark')
      await assertAccessible(page, 'the wizard, dark')
      await shot(page, 'agents-enroll-connected-dark')
      await setTheme(page, 'light')

      await page.getByRole('link', { name: 'Done' }).click()
      await page.waitForURL(/\/agents$/)
      const r = row(page, agentId)
      await r.waitFor()
      assert.equal(await r.locator('[data-status]').getAttribute('data-status'), 'online')
      const cells = await r.locator('td').allTextContents()
      assert.equal(cells[0], HOST)
      assert.equal(cells[2], HOST)
      assert.match(cells[3]!, /^\d+\.\d+\.\d+/, 'the agent version')
      assert.equal(cells[4], 'Linux')
      assert.match(cells[6]!, /just now|s ago/)
      await page.getByTestId('agent-counts').getByText('1 online').waitFor()
      await assertAccessible(page, 'the agents list')
      await shot(page, 'agents-list')

      // The service stops: the list turns the agent offline on its own (no reload).
      await agent.kill('SIGTERM')
      await r.locator('[data-status="offline"]').waitFor({ timeout: 30_000 })
      await page.getByTestId('agent-counts').getByText('1 offline').waitFor({ timeout: 30_000 })
      await shot(page, 'agents-list-offline')

      // Filters are in the URL and answered by the server.
      await page.getByLabel('Status').selectOption('online')
      await page.getByText('No agents match').waitFor()
      await page.getByLabel('Status').selectOption('offline')
      await r.waitFor()
      await page.getByLabel('Search agents').fill('no-such-host-anywhere')
      await page.getByText('No agents match').waitFor()
      assert.match(page.url(), /q=no-such-host-anywhere/)
      await page.getByLabel('Search agents').fill('')
      await r.waitFor()
      // The one failed request was the refused token (max uses 0).
      await assertClean(page, problems, (t) => forcedFailure(400)(t) && t.includes('/api/v1/agents/enrollment-tokens'))
    } finally {
      await context.close()
    }
  })

  test('the detail page shows the facts; revoking asks first (Escape cancels), a failure keeps the dialog open, then the agent is revoked', async () => {
    const { agentId, agent } = await enrolledAgent(ui, token, true)
    agents.push(agent!)
    const { context, page, problems } = await openPage(browser)
    try {
      await signIn(page, ui.base)
      await page.goto(`${ui.base}/agents/${agentId}`)
      await page.getByTestId('agent-facts').getByText('Operating system').waitFor()
      await page.locator('[data-testid="agent-state"] [data-status="online"]').waitFor()
      const facts = (await page.getByTestId('agent-facts').textContent()) ?? ''
      assert.match(facts, /Host name/)
      assert.match(facts, new RegExp(escape(HOST)))
      assert.match(facts, /Linux/)
      assert.match(facts, /CPUs/)
      assert.match(facts, /Memory\s*[\d.]+ [KMGT]iB/)
      assert.match((await page.getByTestId('agent-info').textContent()) ?? '', /Version\s*\d+\.\d+\.\d+/)
      assert.equal(await page.getByTestId('agent-info').getByRole('link', { name: 'Open target' }).count(), 1)
      await assertAccessible(page, 'the agent detail')
      await shot(page, 'agents-detail')

      const revoke = page.getByRole('button', { name: 'Revoke agent' })
      await revoke.click()
      const dialog = page.getByRole('alertdialog', { name: `Revoke agent ${HOST}?` })
      await dialog.waitFor()
      assert.equal(await page.evaluate(() => !!document.activeElement?.closest('dialog')), true, 'focus moves into the dialog')
      await assertAccessible(page, 'the revoke dialog')
      await shot(page, 'agents-revoke-dialog')
      await page.keyboard.press('Escape')
      await dialog.waitFor({ state: 'hidden' })
      assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Revoke agent', 'focus returns to the button')

      const restore = await failRequests(page, '**/api/v1/agents/*/revoke')
      await revoke.click()
      await dialog.getByRole('button', { name: 'Revoke agent' }).click()
      const alert = dialog.getByRole('alert')
      await alert.waitFor()
      assert.match((await alert.textContent()) ?? '', /INTERNAL.*forced by the test/)
      assert.match((await alert.textContent()) ?? '', /test-req-1/)
      await restore()

      await dialog.getByRole('button', { name: 'Revoke agent' }).click()
      await dialog.waitFor({ state: 'hidden' })
      await page.locator('[data-testid="agent-state"] [data-status="revoked"]').waitFor()
      assert.equal(await page.getByRole('button', { name: 'Revoke agent' }).count(), 0, 'a revoked agent cannot be revoked again')
      const stored = await apiCall(ui.base, 'GET', `/api/v1/agents/${agentId}`, token)
      assert.equal((stored.body as { status: string }).status, 'revoked')
      await setTheme(page, 'dark')
      await assertAccessible(page, 'a revoked agent, dark')
      await shot(page, 'agents-detail-revoked-dark')
      await setTheme(page, 'light')
      await assertClean(page, problems, forcedFailure(500))
    } finally {
      await context.close()
    }
  })

  test('an agent older than the supported minimum is flagged in the list and on its page, counted, and filtered on', async () => {
    // A controller that supports only agents from 99.0.0 on: this checkout's agent is outdated there.
    const strict = await startUiController({ OPSC_AGENT_MIN_VERSION: '99.0.0' })
    const { context, page, problems } = await openPage(browser)
    try {
      const { agentId } = await enrolledAgent(strict, await adminToken(strict.base), false)
      await signIn(page, strict.base)
      await page.goto(`${strict.base}/agents`)
      const r = row(page, agentId)
      await r.getByTestId('agent-outdated').waitFor()
      assert.match((await r.getByTestId('agent-outdated').getAttribute('title')) ?? '', /oldest agent version/)
      const toggle = page.getByRole('button', { name: '1 outdated' })
      assert.match((await toggle.getAttribute('title')) ?? '', /older than 99\.0\.0/)
      await toggle.click()
      await page.waitForURL(/outdated=true/)
      assert.equal(await toggle.getAttribute('aria-pressed'), 'true')
      await r.waitFor()
      await assertAccessible(page, 'the agents list with an outdated agent')
      await shot(page, 'agents-outdated')
      await r.getByRole('link').first().click()
      await page.getByTestId('agent-info').getByTestId('agent-outdated').waitFor()
      await assertClean(page, problems)
    } finally {
      await context.close()
      await strict.stop()
    }
  })

  test('an operator sees agents but cannot enrol or revoke; a viewer is refused with the reason', async () => {
    const operator = await openPage(browser)
    try {
      await signIn(operator.page, ui.base, 'otto', PASSWORD)
      await operator.page.goto(`${ui.base}/agents`)
      await operator.page.locator('tr[data-agent-id]').first().waitFor()
      assert.equal(await operator.page.getByRole('link', { name: 'Enroll an agent' }).count(), 0)
      await operator.page.locator('tr[data-agent-id] a').first().click()
      await operator.page.getByTestId('agent-facts').waitFor()
      assert.equal(await operator.page.getByRole('button', { name: 'Revoke agent' }).count(), 0)
      await operator.page.goto(`${ui.base}/agents/enroll`)
      await operator.page.getByText('Only administrators can enroll agents').waitFor()
      assert.equal(await operator.page.getByRole('button', { name: 'Create token' }).count(), 0)
      await assertClean(operator.page, operator.problems)
    } finally {
      await operator.context.close()
    }
    const viewer = await openPage(browser)
    try {
      const requests: string[] = []
      viewer.page.on('request', (r) => requests.push(new URL(r.url()).pathname))
      await signIn(viewer.page, ui.base, 'vic', PASSWORD)
      await viewer.page.goto(`${ui.base}/agents`)
      const alert = viewer.page.getByRole('alert')
      await alert.waitFor()
      assert.match((await alert.textContent()) ?? '', /operator role.*viewer/)
      assert.deepEqual(requests.filter((p) => p.startsWith('/api/v1/agents')), [], 'nothing asked that the API would refuse')
      await assertAccessible(viewer.page, 'agents refused to a viewer')
      await assertClean(viewer.page, viewer.problems)
    } finally {
      await viewer.context.close()
    }
  })

  test('a failing list shows the error and recovers with Try again; an unknown agent says so', async () => {
    const { context, page, problems } = await openPage(browser)
    try {
      await signIn(page, ui.base)
      const restore = await failRequests(page, /\/api\/v1\/agents\?/)
      await page.goto(`${ui.base}/agents`)
      const alert = page.getByRole('alert')
      await alert.waitFor()
      assert.match((await alert.textContent()) ?? '', /Could not load agents.*INTERNAL/)
      // The rest of the page stays usable: the filters, the counts.
      await page.getByTestId('agent-counts').waitFor()
      await assertAccessible(page, 'the agents list failing')
      await shot(page, 'agents-list-error')
      await restore()
      await page.getByRole('button', { name: 'Try again' }).click()
      await page.locator('tr[data-agent-id]').first().waitFor()

      await page.goto(`${ui.base}/agents/00000000-0000-4000-8000-000000000000`)
      const missing = page.getByRole('alert')
      await missing.waitFor()
      assert.match((await missing.textContent()) ?? '', /NOT_FOUND/)
      await page.getByRole('link', { name: '← Agents' }).waitFor()
      await assertClean(page, problems, (t) => forcedFailure(500)(t) || forcedFailure(404)(t))
    } finally {
      await context.close()
    }
  })

  test('390 px phone, dark: the list scrolls inside its frame, the wizard stacks; accessible', async () => {
    const { context, page, problems } = await openPage(browser, { width: 390, height: 844 })
    try {
      await signIn(page, ui.base)
      await setTheme(page, 'dark')
      await page.goto(`${ui.base}/agents`)
      await page.locator('tr[data-agent-id]').first().waitFor()
      await assertNoOverflow(page, 'agents list at 390 px')
      await assertAccessible(page, 'the agents list on a phone, dark')
      await shot(page, 'agents-list-phone-dark')
      await page.goto(`${ui.base}/agents/enroll`)
      await page.getByRole('button', { name: 'Create token' }).click()
      await page.getByTestId('linux-enroll-command').waitFor()
      await assertNoOverflow(page, 'the wizard at 390 px')
      await assertAccessible(page, 'the wizard on a phone, dark')
      await shot(page, 'agents-enroll-phone-dark')
      await setTheme(page, 'light')
      await shot(page, 'agents-enroll-phone')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })
})

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
