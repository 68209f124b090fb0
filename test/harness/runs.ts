import assert from 'node:assert/strict'
import { eq } from 'drizzle-orm'
import { agent } from '../../controller/src/agents/agents.sql.ts'
import { createApp } from '../../controller/src/app.ts'
import type { AppContext } from '../../controller/src/context.ts'
import { call, createTestUser, type CallResult } from './auth.ts'
import { waitUntil } from './agents.ts'

/** API calls as an operator against a controller's own app (in-process, real routes and auth). */
export class RunsApi {
  private constructor(
    private readonly ctx: AppContext,
    private readonly token: string,
  ) {}

  static async as(ctx: AppContext, role: 'admin' | 'operator' | 'viewer' = 'operator'): Promise<RunsApi> {
    const user = await createTestUser(ctx, role)
    return new RunsApi(ctx, user.token)
  }

  private built: ReturnType<typeof createApp> | undefined
  private get app() {
    return (this.built ??= createApp(this.ctx))
  }

  call<T = any>(method: string, path: string, body?: unknown): Promise<CallResult<T>> {
    return call<T>(this.app, method, path, { token: this.token, ...(body !== undefined ? { body } : {}) })
  }

  async createJob(definition: unknown): Promise<string> {
    const res = await this.call('POST', '/api/v1/jobs', definition)
    assert.equal(res.status, 201, JSON.stringify(res.body))
    return res.body.id as string
  }

  async run(jobId: string, request: unknown = {}): Promise<string> {
    const res = await this.call('POST', `/api/v1/jobs/${jobId}/run`, request)
    assert.equal(res.status, 202, JSON.stringify(res.body))
    return res.body.run_id as string
  }

  async waitForRun(runId: string, timeoutMs = 60_000): Promise<any> {
    let last: any
    await waitUntil(
      async () => {
        last = (await this.call('GET', `/api/v1/runs/${runId}`)).body
        return !['queued', 'running'].includes(last.status)
      },
      timeoutMs,
      `run ${runId} to finish`,
    )
    return last
  }

  async steps(runId: string): Promise<any[]> {
    const res = await this.call('GET', `/api/v1/runs/${runId}/steps?limit=500`)
    assert.equal(res.status, 200, JSON.stringify(res.body))
    return res.body.items
  }

  async output(runId: string, stepRunId: string, stream?: 'stdout' | 'stderr'): Promise<string> {
    const res = await this.call('GET', `/api/v1/runs/${runId}/steps/${stepRunId}/output${stream ? `?stream=${stream}` : ''}`)
    assert.equal(res.status, 200)
    return typeof res.body === 'string' ? res.body : JSON.stringify(res.body)
  }

  /** Opens the live event stream; `events` fills as they arrive. */
  async events(runId: string, lastEventId?: number): Promise<SseReader> {
    const res = await this.app.request(`/api/v1/runs/${runId}/events`, {
      headers: { authorization: `Bearer ${this.token}`, ...(lastEventId !== undefined ? { 'last-event-id': String(lastEventId) } : {}) },
    })
    assert.equal(res.status, 200)
    return new SseReader(res.body!)
  }
}

export interface SseEvent {
  id: number
  event: string
  data: any
  receivedAt: number
}

export class SseReader {
  readonly events: SseEvent[] = []
  readonly done: Promise<void>
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>

  constructor(body: ReadableStream<Uint8Array>) {
    this.reader = body.getReader()
    this.done = this.pump()
  }

  private async pump(): Promise<void> {
    const decoder = new TextDecoder()
    let buffer = ''
    for (;;) {
      const { value, done } = await this.reader.read().catch(() => ({ value: undefined, done: true }))
      if (done) return
      buffer += decoder.decode(value, { stream: true })
      let cut: number
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut)
        buffer = buffer.slice(cut + 2)
        const fields: Record<string, string> = {}
        for (const line of block.split('\n')) {
          const m = /^([a-z]+): ?(.*)$/i.exec(line)
          if (m) fields[m[1]!] = fields[m[1]!] !== undefined ? `${fields[m[1]!]}\n${m[2]}` : m[2]!
        }
        if (!fields.event) continue
        this.events.push({ id: Number(fields.id), event: fields.event, data: fields.data ? JSON.parse(fields.data) : null, receivedAt: Date.now() })
      }
    }
  }

  /** The output text of one step run seen so far, in seq order. */
  output(stepRunId?: string): string {
    return Buffer.concat(
      this.events.filter((e) => e.event === 'output' && (!stepRunId || e.data.step_run_id === stepRunId)).map((e) => Buffer.from(e.data.data, 'base64')),
    ).toString('utf8')
  }

  async close(): Promise<void> {
    await this.reader.cancel().catch(() => {})
  }
}

export async function agentTargetId(ctx: AppContext, agentId: string): Promise<string> {
  const [row] = await ctx.db.select({ targetId: agent.targetId }).from(agent).where(eq(agent.id, agentId))
  return row!.targetId!
}
