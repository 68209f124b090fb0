import type { z } from 'zod'
import type { ConnectionTestResult } from '../../../../controller/src/targets/connection-test.ts'
import type { ImportReport } from '../../../../controller/src/targets/import-export.ts'
import type { BulkInput } from '../../../../controller/src/targets/bulk.ts'
import type { TargetInput } from '../../../../controller/src/targets/schemas.ts'
import type { ListTargetsQuery } from '../../../../controller/src/targets/service.ts'
import type { GroupInput } from '../../../../controller/src/target-groups/service.ts'
import { api, ApiError, send, sessionFetch, unwrap, type Ok } from '../../api.ts'

/*
 * The targets API as this feature uses it: types from the controller, keyset paging, the calls
 * whose bodies the server parses itself (send), and the two that are not JSON (import, export).
 */

export type TargetPage = Ok<Awaited<ReturnType<typeof api.targets.$get>>>
export type TargetRow = TargetPage['items'][number]
export type Target = Ok<Awaited<ReturnType<(typeof api.targets)[':id']['$get']>>>
export type Connection = Target['connection']
export type HostKey = Ok<Awaited<ReturnType<(typeof api.targets)[':id']['host-keys']['$get']>>>['items'][number]
export type Group = Ok<Awaited<ReturnType<(typeof api)['target-groups']['$get']>>>['items'][number]
export type { ConnectionTestResult, ImportReport }
export type TargetBody = z.input<typeof TargetInput>
export type BulkBody = z.input<typeof BulkInput>
export type GroupBody = z.input<typeof GroupInput>
export type OsType = NonNullable<TargetBody['os_type']>
export type ConnectionType = Connection['type']

export const OS_LABELS: Record<OsType, string> = { linux: 'Linux', windows: 'Windows', unix: 'Unix', network: 'Network device', other: 'Other' }
export const CONNECTION_LABELS: Record<ConnectionType, string> = { ssh: 'SSH', winrm: 'WinRM', agent: 'Agent' }

/** The list's filters as the API takes them (`tag` repeats). */
export type TargetFilter = Pick<ListTargetsQuery, 'q' | 'os' | 'group' | 'connection' | 'online' | 'enabled' | 'selector'> & { tag?: string[] }

export const PAGE_SIZE = 500

/** One page of the filtered list, with each target's groups. */
export function fetchTargetPage(filter: TargetFilter, cursor: string | undefined, signal: AbortSignal): Promise<TargetPage> {
  const query: Record<string, string | string[]> = { limit: String(PAGE_SIZE), with_groups: 'true' }
  for (const [k, v] of Object.entries(filter)) if (v !== undefined && v !== '' && !(Array.isArray(v) && v.length === 0)) query[k] = v
  if (cursor) query.cursor = cursor
  return unwrap(api.targets.$get({ query }, { init: { signal } }), 'GET /targets')
}

/** Every page of a keyset-paginated list (for short lists: groups, credentials, agents). */
export async function fetchAll<T>(page: (cursor: string | undefined) => Promise<{ items: T[]; next: string | null }>, max = 10_000): Promise<T[]> {
  const out: T[] = []
  let cursor: string | undefined
  do {
    const p = await page(cursor)
    out.push(...p.items)
    cursor = p.next ?? undefined
  } while (cursor && out.length < max)
  return out
}

export const listGroups = () => fetchAll((cursor) => unwrap(api['target-groups'].$get({ query: { limit: '500', ...(cursor ? { cursor } : {}) } }), 'GET /target-groups'))

export const getTarget = (id: string) => unwrap(api.targets[':id'].$get({ param: { id } }), 'GET /targets/:id')
export const hostKeys = (id: string) => unwrap(api.targets[':id']['host-keys'].$get({ param: { id } }), 'GET /targets/:id/host-keys')

export const createTarget = (body: TargetBody) => send<Target>('POST', '/api/v1/targets', body)
export const updateTarget = (id: string, body: Partial<TargetBody>) => send<Target>('PUT', `/api/v1/targets/${encodeURIComponent(id)}`, body)
export const deleteTarget = (id: string) => send<Target>('DELETE', `/api/v1/targets/${encodeURIComponent(id)}`)
export const bulkChange = (body: BulkBody) => send<{ changed: number }>('POST', '/api/v1/targets/bulk', body)
export const testConnection = (id: string, transport: 'ssh' | 'winrm') => send<ConnectionTestResult>('POST', `/api/v1/targets/${encodeURIComponent(id)}/test-${transport}`, {})
export const decideHostKey = (id: string, keyId: string, decision: 'approve' | 'revoke') =>
  send<HostKey>('POST', `/api/v1/targets/${encodeURIComponent(id)}/host-keys/${encodeURIComponent(keyId)}/${decision}`)

export const createGroup = (body: GroupBody) => send<Group>('POST', '/api/v1/target-groups', body)
export const updateGroup = (id: string, body: Partial<GroupBody>) => send<Group>('PUT', `/api/v1/target-groups/${encodeURIComponent(id)}`, body)
export const deleteGroup = (id: string) => send<Group>('DELETE', `/api/v1/target-groups/${encodeURIComponent(id)}`)

export type ResolveAnswer = Ok<Awaited<ReturnType<typeof api.targets.resolve.$get>>>
export const resolveSelector = (selector: string, signal?: AbortSignal) =>
  unwrap(api.targets.resolve.$get({ query: { selector, limit: '5' } }, signal ? { init: { signal } } : {}), 'GET /targets/resolve')

/** Bulk changes take at most 10,000 targets per request: bigger selections go in slices. */
export async function bulkInSlices(body: BulkBody): Promise<number> {
  let changed = 0
  for (let i = 0; i < body.target_ids.length; i += 10_000) changed += (await bulkChange({ ...body, target_ids: body.target_ids.slice(i, i + 10_000) } as BulkBody)).changed
  return changed
}

/** A call whose body is not JSON, answered in the API's JSON (or its error shape). */
async function rawCall(method: 'GET' | 'POST', path: string, body?: string, contentType?: string): Promise<Response> {
  let res: Response
  try {
    res = await sessionFetch(path, { method, ...(body !== undefined ? { body, headers: { 'content-type': contentType ?? 'text/plain' } } : {}) })
  } catch (cause) {
    throw new ApiError(0, 'NETWORK', `could not reach the controller (${method} ${path})`, undefined, undefined, { cause })
  }
  if (res.ok) return res
  let parsed: { error?: { code?: string; message?: string; details?: unknown; request_id?: string } } | undefined
  try {
    parsed = (await res.json()) as typeof parsed
  } catch {
    parsed = undefined
  }
  const e = parsed?.error
  if (e?.code && e.message) throw new ApiError(res.status, e.code as ApiError['code'], e.message, e.details, e.request_id)
  throw new ApiError(res.status, 'BAD_RESPONSE', `${method} ${path} failed with HTTP ${res.status}`)
}

export type ImportFormat = 'csv' | 'json'

export async function importTargets(text: string, format: ImportFormat, dryRun: boolean): Promise<ImportReport> {
  const res = await rawCall('POST', `/api/v1/targets/import?dry_run=${dryRun}`, text, format === 'csv' ? 'text/csv' : 'application/json')
  return (await res.json()) as ImportReport
}

/** Downloads the export through the session (a plain link would miss a silent token refresh). */
export async function downloadExport(format: ImportFormat): Promise<void> {
  const res = await rawCall('GET', `/api/v1/targets/export?format=${format}`)
  const url = URL.createObjectURL(await res.blob())
  const a = document.createElement('a')
  a.href = url
  a.download = `targets.${format}`
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}

// ---- small formatting helpers shared by the pages -------------------------------------------------

export const tagPairs = (tags: Record<string, string>) => Object.entries(tags).map(([k, v]) => (v === '' ? k : `${k}=${v}`))

export function connectionSummary(c: Connection): string {
  switch (c.type) {
    case 'ssh':
      return `SSH :${c.port}`
    case 'winrm':
      return c.https ? `WinRM :${c.port}` : `WinRM HTTP :${c.port}`
    case 'agent':
      return 'Agent'
  }
}

export const formatNumber = (n: number) => n.toLocaleString('en-US')

