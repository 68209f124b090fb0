import { api, getJson, send, unwrap, type Ok } from '../../api.ts'
import type { ExportedDefinition } from '../../../../controller/src/jobs/service.ts'

/*
 * The jobs API as this feature uses it; every type is read from the controller's route types so
 * a change on the server shows up here as a type error, not as a blank field.
 */

type Res<F extends (...args: never[]) => unknown> = Ok<Awaited<ReturnType<F>>>

export type JobList = Res<typeof api.jobs.$get>
export type JobListItem = JobList['items'][number]
export type Job = Res<(typeof api.jobs)[':id']['$get']>
export type JobParameter = Job['parameters'][number]
export type VersionList = Res<(typeof api.jobs)[':id']['versions']['$get']>
export type VersionItem = VersionList['items'][number]
export type Plan = Res<(typeof api.jobs)[':id']['plan']['$post']>
export type Launched = Res<(typeof api.jobs)[':id']['run']['$post']>
export type Resolved = Res<typeof api.targets.resolve.$get>
export type ImportResult = Res<typeof api.jobs.import.$post>
export type RunList = Res<typeof api.runs.$get>
export type RunItem = RunList['items'][number]
/** A definition as GET /jobs/:id/export gives it and POST /jobs and PUT /jobs/:id take it. */
export type Definition = ExportedDefinition

export interface ListFilter {
  q?: string | undefined
  tag?: string | undefined
}

const query = (f: ListFilter & { cursor?: string | undefined; limit?: number }) => {
  const out: Record<string, string> = {}
  if (f.q) out.q = f.q
  if (f.tag) out.tag = f.tag
  if (f.cursor) out.cursor = f.cursor
  if (f.limit) out.limit = String(f.limit)
  return out
}

export const listJobs = (f: ListFilter & { cursor?: string | undefined; limit?: number }) => unwrap(api.jobs.$get({ query: query(f) }), 'GET /jobs')
export const getJob = (id: string) => unwrap(api.jobs[':id'].$get({ param: { id } }), 'GET /jobs/:id')
export const getJobVersion = (id: string, version: number) => unwrap(api.jobs[':id'].versions[':version'].$get({ param: { id, version: String(version) } }), 'GET /jobs/:id/versions/:version')
// The versions route reads its page query itself (no typed query): the cursor goes in the URL.
export const listVersions = (id: string, cursor?: string) =>
  getJson<VersionList>(`/api/v1/jobs/${encodeURIComponent(id)}/versions${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`)
export const recentRuns = (jobId: string) => unwrap(api.runs.$get({ query: { job_id: jobId, limit: '10' } }), 'GET /runs')
export const resolveSelector = (selector: string, limit = 8) => unwrap(api.targets.resolve.$get({ query: { selector, limit: String(limit) } }), 'GET /targets/resolve')

export const createJob = (definition: unknown) => send<Job>('POST', '/api/v1/jobs', definition)
export const updateJob = (id: string, definition: unknown) => send<Job>('PUT', `/api/v1/jobs/${encodeURIComponent(id)}`, definition)
export const removeJob = (id: string) => send<Job>('DELETE', `/api/v1/jobs/${encodeURIComponent(id)}`)
export const importJobs = (body: unknown) => send<ImportResult>('POST', '/api/v1/jobs/import', body)

export interface RunRequest {
  parameters: Record<string, string | number | boolean>
  targets?: string
}
export const planRun = (id: string, request: RunRequest) => send<Plan>('POST', `/api/v1/jobs/${encodeURIComponent(id)}/plan`, request)
export const launchRun = (id: string, request: RunRequest) => send<Launched>('POST', `/api/v1/jobs/${encodeURIComponent(id)}/run`, request)

export const exportOne = (id: string) => getJson<Definition>(`/api/v1/jobs/${encodeURIComponent(id)}/export`)
export const exportAll = (f: ListFilter) => {
  const qs = new URLSearchParams(query(f)).toString()
  return getJson<{ jobs: Definition[] }>(`/api/v1/jobs/export${qs ? `?${qs}` : ''}`)
}

/** Saves JSON as a file the browser downloads (fetched with the session, so an expired token is refreshed first). */
export function downloadJson(fileName: string, value: unknown): void {
  const url = URL.createObjectURL(new Blob([`${JSON.stringify(value, null, 2)}\n`], { type: 'application/json' }))
  const a = document.createElement('a')
  a.href = url
  a.download = fileName
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
}

export const fileNameOf = (name: string) => `${name.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 100) || 'job'}.json`
