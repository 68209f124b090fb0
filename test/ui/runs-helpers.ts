import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { eq } from 'drizzle-orm'
import type { Page } from 'playwright-core'
import { createEnrollmentToken } from '../../controller/src/agents/enrollment.ts'
import type { AppContext } from '../../controller/src/context.ts'
import { stepOutput, stepRun } from '../../controller/src/runs/runs.sql.ts'
import { agentCli, AgentProcess, waitUntil } from '../harness/agents.ts'
import { agentTargetId } from '../harness/runs.ts'
import { apiCall, type UiController } from './harness.ts'

/** A real agent process enrolled with the UI test controller; its host is this machine (no sshd needed). */
export async function startAgent(ui: UiController, token: string): Promise<{ agent: AgentProcess; targetId: string; name: string }> {
  const ctx = ui.controller.ctx
  const stateDir = path.join(mkdtempSync(path.join(tmpdir(), 'opsc-ui-agent-')), 'state')
  const enrollment = await createEnrollmentToken(ctx, undefined, { expires_in_seconds: 600, max_uses: 1 })
  const res = await agentCli(['enroll', '--controller', `127.0.0.1:${ui.grpcPort}`, '--token', enrollment.token, '--ca-fingerprint', ui.controller.caFingerprint, '--state-dir', stateDir])
  assert.equal(res.code, 0, `enroll failed: ${res.stderr}`)
  const agentId = /enrolled as agent ([0-9a-f-]{36})/.exec(res.stdout)![1]!
  const agent = AgentProcess.start(stateDir)
  await agent.waitFor('agent.session_ready')
  const targetId = await agentTargetId(ctx, agentId)
  const target = await apiCall(ui.base, 'GET', `/api/v1/targets/${targetId}`, token)
  return { agent, targetId, name: (target.body as { name: string }).name }
}

/** API calls as the admin, asserting the expected status. */
export class Api {
  constructor(
    readonly base: string,
    readonly token: string,
  ) {}

  async call<T = any>(method: string, p: string, body?: unknown, expect?: number): Promise<T> {
    const res = await apiCall(this.base, method, p, this.token, body)
    if (expect !== undefined) assert.equal(res.status, expect, `${method} ${p}: ${JSON.stringify(res.body)}`)
    return res.body as T
  }

  async job(definition: unknown): Promise<string> {
    return (await this.call<{ id: string }>('POST', '/api/v1/jobs', definition, 201)).id
  }

  async run(jobId: string, request: unknown = {}): Promise<string> {
    return (await this.call<{ run_id: string }>('POST', `/api/v1/jobs/${jobId}/run`, request, 202)).run_id
  }

  async getRun(runId: string): Promise<any> {
    return this.call('GET', `/api/v1/runs/${runId}`, undefined, 200)
  }

  async waitForRun(runId: string, done: (r: any) => boolean = (r) => !['queued', 'running'].includes(r.status), timeoutMs = 60_000): Promise<any> {
    let last: any
    await waitUntil(async () => done((last = await this.getRun(runId))), timeoutMs, `run ${runId}`)
    return last
  }

  async steps(runId: string): Promise<any[]> {
    return (await this.call<{ items: any[] }>('GET', `/api/v1/runs/${runId}/steps?limit=500`, undefined, 200)).items
  }
}

/**
 * Stores `count` output lines for a step run straight into step_output (what the engine writes for
 * controller-side steps), in chunks of `perChunk` lines — the event triggers announce them as usual.
 */
export async function seedOutput(ctx: AppContext, stepRunId: string, count: number, line: (i: number) => string, perChunk = 2000): Promise<void> {
  const [existing] = await ctx.db.select({ runId: stepRun.runId }).from(stepRun).where(eq(stepRun.id, stepRunId))
  assert.ok(existing, 'the step run exists')
  let seq = 1000
  const rows: (typeof stepOutput.$inferInsert)[] = []
  for (let i = 0; i < count; i += perChunk) {
    let text = ''
    for (let k = i; k < Math.min(count, i + perChunk); k++) text += `${line(k)}\n`
    rows.push({ stepRunId, seq: ++seq, stream: 1, data: Buffer.from(text) })
  }
  for (let i = 0; i < rows.length; i += 50) await ctx.db.insert(stepOutput).values(rows.slice(i, i + 50))
}

export interface FrameStats {
  frames: number
  p50: number
  p95: number
  max: number
  /** The most rows the list held in the DOM at any sample. */
  maxRows: number
}

/**
 * Scrolls the output list from top to bottom in `steps` programmatic jumps, one per animation
 * frame, and records the time between frames (requestAnimationFrame deltas) in the page.
 */
export async function scrollAndMeasure(page: Page, steps: number): Promise<FrameStats> {
  // A plain script string: functions compiled by the test's TypeScript loader would carry its helpers.
  return page.evaluate(`new Promise((resolve) => {
    const n = ${steps}
    const list = document.querySelector('[aria-label="Run output"]')
    const deltas = []
    let maxRows = 0
    let i = 0
    let last = 0
    const frame = (t) => {
      deltas.push(t - last)
      last = t
      maxRows = Math.max(maxRows, list.querySelectorAll('.log-line').length)
      if (i > n) {
        const sorted = [...deltas].sort((a, b) => a - b)
        const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
        return resolve({ frames: deltas.length, p50: q(0.5), p95: q(0.95), max: sorted[sorted.length - 1], maxRows })
      }
      // Jump through the whole list, with some back-and-forth like a dragged scrollbar.
      const max = list.scrollHeight - list.clientHeight
      list.scrollTop = Math.round((max * i) / n) + (i % 3 === 0 ? -800 : 0)
      i++
      requestAnimationFrame(frame)
    }
    requestAnimationFrame((t) => {
      last = t
      requestAnimationFrame(frame)
    })
  })`)
}

/** The list's scroll position: whether it shows the last line. */
export async function atEnd(page: Page): Promise<boolean> {
  return page.evaluate(`(() => {
    const list = document.querySelector('[aria-label="Run output"]')
    return list.scrollTop + list.clientHeight >= list.scrollHeight - 20
  })()`)
}

/** Signs in through the form, landing straight on `next` (not on the dashboard). */
export async function signInTo(page: Page, base: string, next: string, username: string, password: string): Promise<void> {
  await page.goto(`${base}/login?next=${encodeURIComponent(next)}`)
  await page.getByLabel('Username').fill(username)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  // Attached, not visible: at phone width the navigation is a closed menu.
  await page.locator('nav#main-nav').waitFor({ state: 'attached' })
}

/** The number in "12,345 lines" above the viewer. */
export async function shownLines(page: Page): Promise<number> {
  const text = await page.locator('.log-status span').first().textContent()
  return Number((text ?? '').replace(/[^\d]/g, ''))
}
