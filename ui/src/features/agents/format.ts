// Pure presentation rules for agents and the dashboard: no Solid, no DOM, so node:test covers them.
import { formatBytes } from '../../components/format.ts'

const FACT_LABELS: Record<string, string> = {
  hostname: 'Host name',
  fqdn: 'FQDN',
  os: 'Operating system',
  os_version: 'OS version',
  kernel_version: 'Kernel',
  arch: 'Architecture',
  ip_addresses: 'IP addresses',
  machine_id: 'Machine id',
  cpu_count: 'CPUs',
  memory_bytes: 'Memory',
  address: 'Address',
}

const OS_LABELS: Record<string, string> = { linux: 'Linux', windows: 'Windows', darwin: 'macOS', freebsd: 'FreeBSD' }

export interface FactView {
  key: string
  label: string
  value: string
}

/** Host facts as label/value rows: known facts first in a fixed order, then the rest by key; empty ones left out. */
export function factRows(facts: Record<string, unknown>): FactView[] {
  const known = Object.keys(FACT_LABELS).filter((k) => k in facts)
  const rest = Object.keys(facts)
    .filter((k) => !(k in FACT_LABELS))
    .sort()
  return [...known, ...rest]
    .map((key) => ({ key, label: FACT_LABELS[key] ?? key, value: factValue(key, facts[key]) }))
    .filter((f) => f.value !== '')
}

function factValue(key: string, v: unknown): string {
  if (v === null || v === undefined) return ''
  if (key === 'memory_bytes' && typeof v === 'number') return formatBytes(v)
  if (key === 'os' && typeof v === 'string') return OS_LABELS[v] ?? v
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ')
  if (typeof v === 'object') return JSON.stringify(v)
  return String(v)
}

/** The operating system of an agent's facts, for the list ("Linux", "Windows", or ""). */
export function osLabel(facts: Record<string, unknown>): string {
  const os = facts['os']
  return typeof os === 'string' && os !== 'unknown' ? (OS_LABELS[os] ?? os) : ''
}

/** `key=value` pairs separated by commas or new lines → tags; a pair without `=` is a tag with an empty value. */
export function parseTags(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const raw of text.split(/[,\n]/)) {
    const pair = raw.trim()
    if (!pair) continue
    const eq = pair.indexOf('=')
    if (eq === -1) out[pair] = ''
    else out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim()
  }
  return out
}

/** "3 of 10 steps" progress as a whole percentage (0 for an empty run). */
export function percent(done: number, total: number): number {
  if (total <= 0) return 0
  return Math.min(100, Math.round((done / total) * 100))
}
