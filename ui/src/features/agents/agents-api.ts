import type { z } from 'zod'
import type { AgentStatus } from '../../../../controller/src/agents/service.ts'
import type { CreateEnrollmentTokenInput } from '../../../../controller/src/agents/enrollment.ts'
import { api, send, unwrap, type Ok } from '../../api.ts'

/** Types come from the controller's routes, so the page and the API cannot drift apart. */
export type AgentPage = Ok<Awaited<ReturnType<typeof api.agents.$get>>>
export type Agent = AgentPage['items'][number]
export type AgentCounts = Ok<Awaited<ReturnType<typeof api.agents.counts.$get>>>
export type CreatedToken = Ok<Awaited<ReturnType<(typeof api.agents)['enrollment-tokens']['$post']>>>
export type TokenAgents = Ok<Awaited<ReturnType<(typeof api.agents)['enrollment-tokens'][':id']['agents']['$get']>>>
export type EnrollmentTokenInput = z.input<typeof CreateEnrollmentTokenInput>
export type { AgentStatus }

export const PAGE_SIZE = 100

export interface AgentQuery {
  q: string
  status: AgentStatus | ''
  /** Only agents older than the controller's supported minimum. */
  outdated: boolean
  cursor: string | undefined
}

export function listAgents(query: AgentQuery): Promise<AgentPage> {
  return unwrap(
    api.agents.$get({
      query: {
        limit: String(PAGE_SIZE),
        ...(query.q ? { q: query.q } : {}),
        ...(query.status ? { status: query.status } : {}),
        ...(query.outdated ? { outdated: 'true' as const } : {}),
        ...(query.cursor ? { cursor: query.cursor } : {}),
      },
    }),
    'GET /agents',
  )
}

export const getAgentCounts = () => unwrap(api.agents.counts.$get(), 'GET /agents/counts')
export const getAgent = (id: string) => unwrap(api.agents[':id'].$get({ param: { id } }), `GET /agents/${id}`)
export const revokeAgent = (id: string) => unwrap(api.agents[':id'].revoke.$post({ param: { id } }), `POST /agents/${id}/revoke`)

/** The body is parsed by the server (readJson), so it goes through `send`; the answer is typed from the route. */
export const createEnrollmentToken = (input: EnrollmentTokenInput) => send<CreatedToken>('POST', '/api/v1/agents/enrollment-tokens', input)
export const getTokenAgents = (id: string) => unwrap(api.agents['enrollment-tokens'][':id'].agents.$get({ param: { id } }), `GET /agents/enrollment-tokens/${id}/agents`)
