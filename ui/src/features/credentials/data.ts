import type { z } from 'zod'
import type { CredentialType } from '../../../../controller/src/credentials/credentials.sql.ts'
import type { CreateCredentialInput } from '../../../../controller/src/credentials/types.ts'
import { api, send, unwrap, type Ok } from '../../api.ts'
import { fetchAll } from '../targets/data.ts'

export type { CredentialType }
export type Credential = Ok<Awaited<ReturnType<typeof api.credentials.$get>>>['items'][number]
export type CredentialInput = z.input<typeof CreateCredentialInput>
export type UsedBy = Ok<Awaited<ReturnType<(typeof api.credentials)[':id']['targets']['$get']>>>['items']

export const TYPE_LABELS: Record<CredentialType, string> = {
  ssh_key: 'SSH key',
  ssh_password: 'SSH password',
  winrm: 'WinRM',
  http_auth: 'HTTP auth / token',
  database: 'Database',
  snmp: 'SNMP',
  certificate: 'Client certificate',
}

export const listCredentials = (query: { type?: CredentialType; q?: string } = {}) =>
  fetchAll((cursor) =>
    unwrap(
      api.credentials.$get({ query: { limit: '500', ...(query.type ? { type: query.type } : {}), ...(query.q ? { q: query.q } : {}), ...(cursor ? { cursor } : {}) } }),
      'GET /credentials',
    ),
  )
export const getCredential = (id: string) => unwrap(api.credentials[':id'].$get({ param: { id } }), 'GET /credentials/:id')
export const credentialTargets = (id: string) => unwrap(api.credentials[':id'].targets.$get({ param: { id } }), 'GET /credentials/:id/targets')
export const createCredential = (body: CredentialInput) => send<Credential>('POST', '/api/v1/credentials', body)
export const updateCredential = (id: string, body: Record<string, unknown>) => send<Credential>('PUT', `/api/v1/credentials/${encodeURIComponent(id)}`, body)
export const deleteCredential = (id: string) => send<Credential>('DELETE', `/api/v1/credentials/${encodeURIComponent(id)}`)

/** The one line that tells credentials of a type apart in a list or a picker. */
export function credentialSummary(c: Credential): string {
  const s = (k: string) => (typeof c[k] === 'string' ? (c[k] as string) : undefined)
  switch (c.type) {
    case 'ssh_key':
      return [s('username'), s('key_type'), s('fingerprint')].filter(Boolean).join(' · ')
    case 'ssh_password':
      return s('username') ?? ''
    case 'winrm':
      return [s('domain') ? `${s('domain')}\\${s('username')}` : s('username'), s('auth')?.toUpperCase(), s('transport')].filter(Boolean).join(' · ')
    case 'http_auth':
      return [s('scheme'), s('username') ?? s('header_name')].filter(Boolean).join(' · ')
    case 'database':
      return `${s('driver') ?? ''} ${s('username') ?? ''}@${s('host') ?? ''}${c.port ? `:${String(c.port)}` : ''}/${s('database') ?? ''}`.trim()
    case 'snmp':
      return [s('version'), s('username'), s('security_level')].filter(Boolean).join(' · ')
    case 'certificate':
      return [s('subject'), s('not_after') ? `expires ${new Date(s('not_after')!).toLocaleDateString()}` : undefined].filter(Boolean).join(' · ')
  }
}
