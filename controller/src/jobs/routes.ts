import { Hono } from 'hono'
import { z } from 'zod'
import { allow } from '../auth/access.ts'
import type { AppEnv } from '../context.ts'
import { ValidationError } from '../errors.ts'
import { PageQuery, parseQuery } from '../http/pagination.ts'
import { readJson } from '../http/validate.ts'
import { createJob, exportDefinition, exportJobs, getJob, getJobRow, getJobVersion, importJobs, listJobs, ListJobsQuery, listVersions, removeJob, updateJob } from './service.ts'
import { jobRunRoutes } from '../runs/routes.ts'
import { listDependencies } from './dependencies.ts'

const AnyJson = z.unknown()
const Version = z.coerce.number().int().min(1)

export const jobsRoutes = new Hono<AppEnv>()
  .get('/', allow('viewer'), async (c) => {
    const query = parseQuery(PageQuery.extend(ListJobsQuery.shape), c.req.query())
    return c.json(await listJobs(c.var.ctx, query, query))
  })
  .post('/', allow('operator'), async (c) => {
    const created = await createJob(c.var.ctx, c.get('principal'), await readJson(c, AnyJson))
    c.set('audit', { resourceType: 'job', resourceId: created.id, summary: { name: created.name, version: created.version } })
    return c.json(created, 201)
  })
  .post('/import', allow('operator'), async (c) => {
    const result = await importJobs(c.var.ctx, c.get('principal'), await readJson(c, AnyJson))
    c.set('audit', { action: 'jobs.import', resourceType: 'job', resourceId: null, summary: { jobs: result.items.map((i) => ({ name: i.name, version: i.version })) } })
    return c.json(result)
  })
  /** Every job (the list's filters apply) in one file that POST /import takes back. */
  .get('/export', allow('viewer'), async (c) => {
    const query = parseQuery(ListJobsQuery, c.req.query())
    c.header('content-disposition', 'attachment; filename="jobs.json"')
    return c.json(await exportJobs(c.var.ctx, query))
  })
  .get('/:id', allow('viewer'), async (c) => c.json(await getJob(c.var.ctx, c.req.param('id'))))
  .put('/:id', allow('operator'), async (c) => {
    const { before, after } = await updateJob(c.var.ctx, c.get('principal'), c.req.param('id'), await readJson(c, AnyJson))
    c.set('audit', { resourceType: 'job', summary: { name: after.name, version: after.version, previous_version: before.version } })
    return c.json(after)
  })
  .delete('/:id', allow('operator'), async (c) => {
    const removed = await removeJob(c.var.ctx, c.req.param('id'))
    c.set('audit', { resourceType: 'job', summary: { name: removed.name } })
    return c.json(removed)
  })
  .get('/:id/export', allow('viewer'), async (c) => {
    const row = await getJobRow(c.var.ctx.db, c.req.param('id'))
    const version = await getJobVersion(c.var.ctx.db, row.id, row.currentVersion)
    const fileName = row.name.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 100) || 'job'
    c.header('content-disposition', `attachment; filename="${fileName}.json"`)
    return c.json(exportDefinition(version.definition))
  })
  .get('/:id/dependencies', allow('viewer'), async (c) => {
    const row = await getJobRow(c.var.ctx.db, c.req.param('id'))
    return c.json(await listDependencies(c.var.ctx.db, row.id))
  })
  .get('/:id/versions', allow('viewer'), async (c) => {
    const page = parseQuery(PageQuery, c.req.query())
    return c.json(await listVersions(c.var.ctx, c.req.param('id'), page))
  })
  .get('/:id/versions/:version', allow('viewer'), async (c) => {
    const parsed = Version.safeParse(c.req.param('version'))
    if (!parsed.success) throw new ValidationError('version must be a positive integer', [{ path: 'version', message: 'not a version number' }])
    return c.json(await getJob(c.var.ctx, c.req.param('id'), parsed.data))
  })
  .route('/', jobRunRoutes)
