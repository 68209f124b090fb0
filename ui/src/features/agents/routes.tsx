import type { RouteDefinition } from '@solidjs/router'
import { lazy } from 'solid-js'

export const agentsRoutes: RouteDefinition[] = [
  { path: '/agents', component: lazy(() => import('./agents-page.tsx').then((m) => ({ default: m.AgentsPage }))) },
  { path: '/agents/enroll', component: lazy(() => import('./enroll-page.tsx').then((m) => ({ default: m.EnrollPage }))) },
  { path: '/agents/:id', component: lazy(() => import('./agent-detail-page.tsx').then((m) => ({ default: m.AgentDetailPage }))) },
]
