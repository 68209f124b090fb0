import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Page } from 'playwright-core'
import { agentCli, AgentProcess } from '../harness/agents.ts'
import { apiCall, screenshot, type UiController } from './harness.ts'

/** A fresh, empty agent state directory (what /var/lib/opsconductor-agent is on a host). */
export function agentStateDir(): string {
  return path.join(mkdtempSync(path.join(tmpdir(), 'opsc-ui-agent-')), 'state')
}

/**
 * Runs an enroll command exactly as the wizard shows it (`sudo opsconductor-agent enroll …`), with
 * the real agent CLI; only the state directory is added, so nothing is written outside the test's temp dir.
 */
export async function runShownEnrollCommand(command: string, stateDir: string): Promise<string> {
  const prefix = 'sudo opsconductor-agent '
  assert.ok(command.startsWith(prefix), `a Linux command run as root: ${command}`)
  const args = command.slice(prefix.length).trim().split(/\s+/)
  const res = await agentCli([...args, '--state-dir', stateDir])
  assert.equal(res.code, 0, `the shown command failed: ${res.stderr}`)
  return /enrolled as agent ([0-9a-f-]{36})/.exec(res.stdout)![1]!
}

/** Enrols an agent through the API (a fresh token) and, when `start`, runs it until it is connected. */
export async function enrolledAgent(ui: UiController, token: string, start: boolean): Promise<{ agentId: string; stateDir: string; agent?: AgentProcess }> {
  const created = await apiCall(ui.base, 'POST', '/api/v1/agents/enrollment-tokens', token, { max_uses: 1 })
  assert.equal(created.status, 201, JSON.stringify(created.body))
  const stateDir = agentStateDir()
  const agentId = await runShownEnrollCommand((created.body as { commands: { linux: string } }).commands.linux, stateDir)
  if (!start) return { agentId, stateDir }
  const agent = AgentProcess.start(stateDir)
  await agent.waitFor('agent.session_ready')
  return { agentId, stateDir, agent }
}

/** Answers every request matching `pattern` with a 500 in the API's error shape, until the returned function is called. */
export async function failRequests(page: Page, pattern: string | RegExp): Promise<() => Promise<void>> {
  const handler = (route: import('playwright-core').Route) =>
    route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: { code: 'INTERNAL', message: 'forced by the test', request_id: 'test-req-1' } }) })
  await page.route(pattern, handler)
  return () => page.unroute(pattern, handler)
}

/** The failed loads the browser logs for a forced error (it logs every non-2xx fetch). */
export const forcedFailure = (status: number) => (text: string) => text.includes(`status of ${status}`)

/**
 * Nothing in the page's content reaches past the content area's right edge: wide tables scroll
 * inside their own frame, long text is cut with an ellipsis. Checked within <main>, so the shell's own top bar is not this page's
 * business (at 390 px it is 7 px too wide, which widens <main> with it).
 */
export async function assertNoOverflow(page: Page, what: string): Promise<void> {
  // A string, so the bundler's helpers (tsx names functions) never reach the page.
  const offenders = (await page.evaluate(`(() => {
    const main = document.querySelector('main')
    const limit = main.getBoundingClientRect().right - parseFloat(getComputedStyle(main).paddingRight) + 0.5
    // Clipped by a scrolling or clipping box that itself fits (a table's frame, an ellipsis) is fine.
    const clipped = (el) => {
      for (let a = el.parentElement; a && a !== main; a = a.parentElement) {
        if (getComputedStyle(a).overflowX !== 'visible') return a.getBoundingClientRect().right <= limit
      }
      return false
    }
    const over = (el) => el.getBoundingClientRect().right > limit && getComputedStyle(el).position !== 'fixed' && !clipped(el)
    // The innermost ones: what is too wide, not its ancestors.
    return [...main.querySelectorAll('*')]
      .filter((el) => over(el) && ![...el.children].some(over))
      .slice(0, 5)
      .map((el) => el.tagName.toLowerCase() + '.' + [...el.classList].join('.') + ' (right ' + Math.round(el.getBoundingClientRect().right) + ' > ' + Math.round(limit) + ')')
  })()`)) as string[]
  assert.deepEqual(offenders, [], `${what}: content wider than the screen`)
}

export async function setTheme(page: Page, theme: 'light' | 'dark'): Promise<void> {
  const current = await page.evaluate(() => document.documentElement.dataset.theme)
  if (current !== theme) await page.getByRole('button', { name: theme === 'dark' ? /dark theme/ : /light theme/ }).click()
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), theme)
}

/** A screenshot from the top of the page (a full-page shot of a scrolled page repeats the sticky top bar mid-page). */
export async function shot(page: Page, name: string): Promise<void> {
  await page.evaluate('window.scrollTo(0, 0)')
  await screenshot(page, name)
}
