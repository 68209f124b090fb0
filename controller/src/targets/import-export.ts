import { parse as parseCsv } from 'csv-parse/sync'
import { stringify as stringifyCsv } from 'csv-stringify/sync'
import { asc, eq, sql } from 'drizzle-orm'
import { z } from 'zod'
import type { AppContext } from '../context.ts'
import { credential } from '../credentials/credentials.sql.ts'
import type { Db } from '../db/client.ts'
import { ValidationError } from '../errors.ts'
import { issuesOf } from '../http/validate.ts'
import { TargetInput } from './schemas.ts'
import { checkConnection, type Problem } from './service.ts'
import { target, targetGroup, targetGroupMember, type TargetRow } from './targets.sql.ts'

/**
 * Bulk import/export of targets as JSON (the API's own shape, plus `groups` by name and
 * `credential` by name) or CSV (one row per target, columns below). Rows are matched to existing
 * targets by name: new names are created, known ones updated. Every row is checked before
 * anything is written; rejected rows are reported and skipped.
 */
export const CSV_COLUMNS = ['name', 'address', 'os_type', 'description', 'enabled', 'tags', 'connection_type', 'port', 'credential', 'host_key_policy', 'https', 'verify_tls', 'groups'] as const
export const MAX_IMPORT_ROWS = 50_000

export interface ImportRowReport {
  /** 1-based record number (CSV: the header is not counted). */
  row: number
  name: string | null
  action: 'create' | 'update' | 'reject'
  errors?: Problem[]
}

export interface ImportReport {
  dry_run: boolean
  created: number
  updated: number
  rejected: number
  rows: ImportRowReport[]
}

/** JSON: an array, or `{ "targets": [...] }`. Credentials and groups may be given by name. */
const JsonImport = z.union([z.array(z.unknown()), z.object({ targets: z.array(z.unknown()) }).transform((o) => o.targets)])

type Raw = Record<string, unknown>

export function parseImportBody(contentType: string, text: string): Raw[] {
  if (/^text\/csv\b/i.test(contentType)) return csvToRaw(text)
  if (/^application\/json\b/i.test(contentType)) {
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      throw new ValidationError('request body is not valid JSON')
    }
    const parsed = JsonImport.safeParse(body)
    if (!parsed.success) throw new ValidationError('send an array of targets, or {"targets": [...]}', issuesOf(parsed.error))
    return parsed.data.map((r) => (typeof r === 'object' && r !== null ? (r as Raw) : { __invalid: r }))
  }
  throw new ValidationError('send JSON (application/json) or CSV (text/csv)')
}

function csvToRaw(text: string): Raw[] {
  let records: Record<string, string>[]
  try {
    records = parseCsv(text, { columns: (header: string[]) => header.map((h) => h.trim().toLowerCase()), skip_empty_lines: true, trim: true, bom: true, relax_column_count: false })
  } catch (err) {
    throw new ValidationError(`CSV cannot be read: ${(err as Error).message}`)
  }
  return records.map((r) => {
    const unknown = Object.keys(r).filter((k) => !(CSV_COLUMNS as readonly string[]).includes(k))
    const bool = (v: string | undefined) => (v === undefined || v === '' ? undefined : /^(true|yes|1)$/i.test(v) ? true : /^(false|no|0)$/i.test(v) ? false : v)
    const num = (v: string | undefined) => (v === undefined || v === '' ? undefined : /^\d+$/.test(v) ? Number(v) : v)
    const type = r.connection_type || 'ssh'
    const connection: Raw = { type }
    if (type === 'ssh') Object.assign(connection, { port: num(r.port), host_key_policy: r.host_key_policy || undefined })
    if (type === 'winrm') Object.assign(connection, { port: num(r.port), https: bool(r.https), verify_tls: bool(r.verify_tls) })
    if (type !== 'agent' && r.credential) connection.credential = r.credential
    const tags = Object.fromEntries(
      (r.tags ?? '')
        .split(';')
        .map((p) => p.trim())
        .filter(Boolean)
        .map((p) => [p.slice(0, Math.max(p.indexOf('='), 0) || p.length), p.includes('=') ? p.slice(p.indexOf('=') + 1) : '']),
    )
    return {
      ...(unknown.length ? { __unknown_columns: unknown } : {}),
      name: r.name,
      address: r.address,
      os_type: r.os_type || undefined,
      description: r.description || undefined,
      enabled: bool(r.enabled),
      tags,
      connection,
      groups: (r.groups ?? '').split(';').map((g) => g.trim()).filter(Boolean),
    }
  })
}

interface Lookups {
  credentials: Map<string, { id: string; type: string }>
  targets: Map<string, { id: string; connectionType: string }>
  targetsById: Map<string, string>
  groups: Map<string, string>
}

async function loadLookups(db: Db): Promise<Lookups> {
  const creds = await db.select({ id: credential.id, name: credential.name, type: credential.type }).from(credential)
  const targets = await db.select({ id: target.id, name: target.name, type: sql<string>`${target.connection}->>'type'` }).from(target)
  const groups = await db.select({ id: targetGroup.id, name: targetGroup.name }).from(targetGroup)
  const credentials = new Map<string, { id: string; type: string }>()
  for (const c of creds) {
    credentials.set(c.id, c)
    credentials.set(`name:${c.name.toLowerCase()}`, c)
  }
  return {
    credentials,
    targets: new Map(targets.map((t) => [t.name.toLowerCase(), { id: t.id, connectionType: t.type }])),
    targetsById: new Map(targets.map((t) => [t.id, t.type])),
    groups: new Map(groups.map((g) => [g.name.toLowerCase(), g.id])),
  }
}

interface CheckedRow {
  report: ImportRowReport
  input?: TargetInput
  existingId?: string
  groupIds: string[]
}

/** Resolves names to ids (`credential` → `credential_id`, `groups` → ids) and validates like the API does. */
function checkRow(raw: Raw, index: number, lookups: Lookups, seen: Set<string>): CheckedRow {
  const errors: Problem[] = []
  const name = typeof raw.name === 'string' ? raw.name.trim() : null
  const { groups, __unknown_columns, __invalid, ...rest } = raw
  if (__invalid !== undefined) errors.push({ path: '', message: 'each target must be an object' })
  if (Array.isArray(__unknown_columns)) errors.push({ path: '', message: `unknown columns: ${__unknown_columns.join(', ')}` })
  const connection = { ...((rest.connection as Raw | undefined) ?? {}) }
  if (typeof connection.credential === 'string') {
    const ref = connection.credential
    const found = lookups.credentials.get(ref) ?? lookups.credentials.get(`name:${ref.toLowerCase()}`)
    if (found) connection.credential_id = found.id
    else errors.push({ path: 'connection.credential', message: `no credential named ${ref}` })
    delete connection.credential
  }
  const groupIds: string[] = []
  for (const [i, g] of (Array.isArray(groups) ? groups : []).entries()) {
    const id = typeof g === 'string' ? lookups.groups.get(g.toLowerCase()) : undefined
    if (id) groupIds.push(id)
    else errors.push({ path: `groups[${i}]`, message: `no group named ${String(g)}` })
  }
  const parsed = TargetInput.safeParse({ ...rest, connection })
  if (!parsed.success) errors.push(...issuesOf(parsed.error))
  const existing = name ? lookups.targets.get(name.toLowerCase()) : undefined
  if (parsed.success) {
    errors.push(
      ...checkConnection(parsed.data.connection, existing?.id ?? null, {
        credentialType: (id) => lookups.credentials.get(id)?.type,
        targetConnectionType: (id) => lookups.targetsById.get(id),
      }),
    )
  }
  if (name && seen.has(name.toLowerCase())) errors.push({ path: 'name', message: 'appears more than once in this import' })
  if (name) seen.add(name.toLowerCase())
  const row = index + 1
  if (errors.length || !parsed.success) return { report: { row, name, action: 'reject', errors }, groupIds }
  return { report: { row, name, action: existing ? 'update' : 'create' }, input: parsed.data, existingId: existing?.id, groupIds }
}

const CHUNK = 500

export async function importTargets(ctx: AppContext, raws: Raw[], dryRun: boolean): Promise<ImportReport> {
  if (raws.length > MAX_IMPORT_ROWS) throw new ValidationError(`at most ${MAX_IMPORT_ROWS} targets per import (got ${raws.length})`)
  const lookups = await loadLookups(ctx.db)
  const seen = new Set<string>()
  const checked = raws.map((raw, i) => checkRow(raw, i, lookups, seen))
  const report: ImportReport = {
    dry_run: dryRun,
    created: checked.filter((c) => c.report.action === 'create').length,
    updated: checked.filter((c) => c.report.action === 'update').length,
    rejected: checked.filter((c) => c.report.action === 'reject').length,
    rows: checked.map((c) => c.report),
  }
  if (dryRun) return report
  const now = ctx.clock()
  await ctx.db.transaction(async (txRaw) => {
    const tx = txRaw as unknown as Db
    const creates = checked.filter((c) => c.report.action === 'create')
    const members: { groupId: string; targetId: string }[] = []
    for (let i = 0; i < creates.length; i += CHUNK) {
      const slice = creates.slice(i, i + CHUNK)
      const inserted = await tx
        .insert(target)
        .values(slice.map(({ input: t }) => ({ name: t!.name, address: t!.address, osType: t!.os_type, description: t!.description ?? null, enabled: t!.enabled, tags: t!.tags, connection: t!.connection, createdAt: now, updatedAt: now })))
        .returning({ id: target.id })
      slice.forEach((c, j) => c.groupIds.forEach((groupId) => members.push({ groupId, targetId: inserted[j]!.id })))
    }
    for (const c of checked.filter((x) => x.report.action === 'update')) {
      const t = c.input!
      await tx
        .update(target)
        .set({ name: t.name, address: t.address, osType: t.os_type, description: t.description ?? null, enabled: t.enabled, tags: t.tags, connection: t.connection, updatedAt: now })
        .where(eq(target.id, c.existingId!))
      c.groupIds.forEach((groupId) => members.push({ groupId, targetId: c.existingId! }))
    }
    for (let i = 0; i < members.length; i += CHUNK) await tx.insert(targetGroupMember).values(members.slice(i, i + CHUNK)).onConflictDoNothing()
  })
  return report
}

/** Export in the import format: re-importing an export changes nothing. */
export async function exportTargets(ctx: AppContext, format: 'json' | 'csv'): Promise<string> {
  const rows = await ctx.db.select().from(target).orderBy(asc(sql`lower(${target.name})`))
  const creds = new Map((await ctx.db.select({ id: credential.id, name: credential.name }).from(credential)).map((c) => [c.id, c.name]))
  const memberships = await ctx.db
    .select({ targetId: targetGroupMember.targetId, name: targetGroup.name })
    .from(targetGroupMember)
    .innerJoin(targetGroup, eq(targetGroup.id, targetGroupMember.groupId))
  const groupsOf = new Map<string, string[]>()
  for (const m of memberships) groupsOf.set(m.targetId, [...(groupsOf.get(m.targetId) ?? []), m.name])
  if (format === 'json') return JSON.stringify({ targets: rows.map((r) => exportObject(r, groupsOf.get(r.id) ?? [])) }, null, 2)
  return stringifyCsv(
    rows.map((r) => csvRow(r, creds, groupsOf.get(r.id) ?? [])),
    { header: true, columns: [...CSV_COLUMNS] },
  )
}

function exportObject(r: TargetRow, groups: string[]) {
  return { name: r.name, address: r.address, os_type: r.osType, description: r.description, enabled: r.enabled, tags: r.tags, connection: r.connection, groups }
}

function csvRow(r: TargetRow, creds: Map<string, string>, groups: string[]): Record<string, string> {
  const c = r.connection
  const credentialId = c.type === 'agent' ? null : c.credential_id
  return {
    name: r.name,
    address: r.address,
    os_type: r.osType,
    description: r.description ?? '',
    enabled: String(r.enabled),
    tags: Object.entries(r.tags).map(([k, v]) => `${k}=${v}`).join(';'),
    connection_type: c.type,
    port: c.type === 'agent' ? '' : String(c.port),
    credential: credentialId ? (creds.get(credentialId) ?? credentialId) : '',
    host_key_policy: c.type === 'ssh' ? c.host_key_policy : '',
    https: c.type === 'winrm' ? String(c.https) : '',
    verify_tls: c.type === 'winrm' ? String(c.verify_tls) : '',
    groups: groups.join(';'),
  }
}
