// Is an agent's reported version at least OPSC_AGENT_MIN_VERSION? Semver precedence on MAJOR.MINOR.PATCH, where a
// pre-release of the minimum itself (0.1.0-rc.1 < 0.1.0) is below it and build metadata is ignored. A version that
// does not parse counts as unsupported: the controller cannot vouch for it. The list filter and the counts need
// the same answer in SQL; versionSupportedSql must agree with isVersionSupported (tested together).
import { sql, type SQL } from 'drizzle-orm'
import type { AnyPgColumn } from 'drizzle-orm/pg-core'

// Parts capped at 9 digits so they always fit a Postgres int.
const SEMVER = '^(\\d{1,9})\\.(\\d{1,9})\\.(\\d{1,9})(-[0-9A-Za-z.-]+)?(\\+[0-9A-Za-z.-]+)?$'
const SEMVER_RE = new RegExp(SEMVER)

function minParts(min: string): [number, number, number] {
  const m = /^(\d{1,9})\.(\d{1,9})\.(\d{1,9})$/.exec(min)
  if (!m) throw new Error(`not a MAJOR.MINOR.PATCH version: ${min}`)
  return [Number(m[1]), Number(m[2]), Number(m[3])]
}

export function isVersionSupported(version: string, min: string): boolean {
  const m = SEMVER_RE.exec(version)
  if (!m) return false
  const want = minParts(min)
  for (let i = 0; i < 3; i++) {
    const part = Number(m[i + 1])
    if (part !== want[i]) return part > want[i]!
  }
  return m[4] === undefined
}

/** The same test as a boolean SQL expression over a text column (never null). */
export function versionSupportedSql(column: AnyPgColumn, min: string): SQL<boolean> {
  const [a, b, c] = minParts(min)
  // Postgres orders arrays element by element, like semver orders MAJOR.MINOR.PATCH.
  const parts = sql`array[v.m[1]::int, v.m[2]::int, v.m[3]::int]`
  const want = sql`array[${a}::int, ${b}::int, ${c}::int]`
  return sql<boolean>`coalesce((select v.m is not null and (${parts} > ${want} or (${parts} = ${want} and v.m[4] is null)) from (select regexp_match(${column}, ${SEMVER}) as m) v), false)`
}
