import { Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import { z } from 'zod'
import { allow } from '../auth/access.ts'
import type { AppEnv } from '../context.ts'
import { ValidationError } from '../errors.ts'
import { PageQuery, parseQuery } from '../http/pagination.ts'
import { readJson } from '../http/validate.ts'
import { streamRunEvents } from './events.ts'
import { launchRun, RunRequest } from './launch.ts'
import { STREAM_NAMES } from '../agents/assignments/events.ts'
import { readOutput } from './output.ts'
import { planJob } from './plan.ts'
import { cancelRun, getRun, getRunRow, getStepRun, listRuns, ListRunsQuery, listStepRuns, ListStepsQuery, retryRun, stepRunDto } from './service.ts'

/** A manual run may start inside a maintenance window covering its targets only when told to (audited). */
const ManualRunRequest = RunRequest.extend({ override_maintenance: z.boolean().optional() }).strict()

/** `POST /jobs/:id/run` and `/plan`, mounted under the jobs router. */
export const jobRunRoutes = new Hono<AppEnv>()
  .post('/:id/run', allow('operator'), async (c) => {
    const { override_maintenance: override, ...request } = await readJson(c, ManualRunRequest)
    const launched = await launchRun(c.var.ctx, c.get('principal'), c.req.param('id'), request, { trigger: 'manual', maintenance: override ? 'override' : 'check' })
    const { runId, targetCount, maintenanceOverridden } = launched
    const summary = { run_id: runId, targets: targetCount, parameters: Object.keys(request.parameters), ...(maintenanceOverridden ? { maintenance_overridden: maintenanceOverridden } : {}) }
    c.set('audit', { action: 'jobs.run', resourceType: 'job', summary })
    return c.json({ run_id: runId, target_count: targetCount }, 202)
  })
  .post('/:id/plan', allow('viewer'), async (c) => {
    const request = await readJson(c, RunRequest)
    c.set('audit', { skip: true })
    return c.json(await planJob(c.var.ctx, c.req.param('id'), request))
  })

const OutputQuery = z.object({
  from_seq: z.coerce.number().int().min(0).default(0),
  stream: z.enum(['stdout', 'stderr']).optional(),
  format: z.enum(['text', 'json']).default('text'),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
})

export const runsRoutes = new Hono<AppEnv>()
  .get('/', allow('viewer'), async (c) => {
    const query = parseQuery(PageQuery.extend(ListRunsQuery.shape), c.req.query())
    return c.json(await listRuns(c.var.ctx, query, query))
  })
  .get('/:id', allow('viewer'), async (c) => c.json(await getRun(c.var.ctx, c.req.param('id'))))
  .get('/:id/steps', allow('viewer'), async (c) => {
    const query = parseQuery(PageQuery.extend(ListStepsQuery.shape), c.req.query())
    return c.json(await listStepRuns(c.var.ctx, c.req.param('id'), query, query))
  })
  .get('/:id/steps/:stepRunId', allow('viewer'), async (c) => c.json(stepRunDto(await getStepRun(c.var.ctx, c.req.param('id'), c.req.param('stepRunId')))))
  .get('/:id/steps/:stepRunId/output', allow('viewer'), async (c) => {
    const q = parseQuery(OutputQuery, c.req.query())
    const s = await getStepRun(c.var.ctx, c.req.param('id'), c.req.param('stepRunId'))
    const prunedAt = (await getRunRow(c.var.ctx, s.runId)).outputPrunedAt
    const chunks = await readOutput(c.var.ctx.db, s.id, { fromSeq: q.from_seq, limit: q.limit, ...(q.stream ? { stream: q.stream } : {}) })
    const last = chunks.at(-1)?.seq ?? q.from_seq
    const complete = chunks.length < q.limit && !['queued', 'running'].includes(s.status)
    c.header('x-next-seq', String(last))
    if (q.format === 'json') {
      return c.json({
        step_run_id: s.id,
        status: s.status,
        truncated: s.truncated,
        output_pruned_at: prunedAt?.toISOString() ?? null,
        complete,
        next_from_seq: last,
        chunks: chunks.map((ch) => ({ seq: ch.seq, stream: STREAM_NAMES[ch.stream] ?? 'stdout', data: ch.data.toString('base64'), dropped_bytes: ch.dropped_bytes })),
      })
    }
    const parts = chunks.map((ch) => (ch.dropped_bytes > 0 ? Buffer.concat([Buffer.from(`\n[opsconductor: ${ch.dropped_bytes} bytes of output were lost on the agent (spool full)]\n`), ch.data]) : ch.data))
    if (prunedAt) parts.push(Buffer.from(`[opsconductor: this output was deleted by the retention policy on ${prunedAt.toISOString()}]\n`))
    if (complete && s.truncated) parts.push(Buffer.from(`\n[opsconductor: output truncated at ${s.outputBytes} bytes (the per-step cap)]\n`))
    return c.body(Buffer.concat(parts), 200, { 'content-type': 'text/plain; charset=utf-8' })
  })
  .get('/:id/events', allow('viewer'), async (c) => {
    const runId = c.req.param('id')
    await getRunRow(c.var.ctx, runId)
    const raw = c.req.header('last-event-id') ?? c.req.query('after') ?? '0'
    if (!/^\d{1,15}$/.test(raw)) throw new ValidationError('Last-Event-ID must be an event id from this stream', [{ path: 'last-event-id', message: 'not an event id' }])
    return streamSSE(c, (stream) => streamRunEvents(c.var.ctx, c.var.ctx.runEngine?.events, runId, Number(raw), stream))
  })
  .post('/:id/cancel', allow('operator'), async (c) => {
    const result = await cancelRun(c.var.ctx, c.get('principal'), c.req.param('id'))
    c.set('audit', { resourceType: 'run', summary: { job: result.job_name } })
    return c.json(result, 202)
  })
  .post('/:id/retry', allow('operator'), async (c) => {
    const result = await retryRun(c.var.ctx, c.get('principal'), c.req.param('id'))
    c.set('audit', { resourceType: 'run', summary: { new_run: result.run_id, targets: result.target_count } })
    return c.json(result, 202)
  })
