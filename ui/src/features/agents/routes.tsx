import type { RouteDefinition } from '@solidjs/router'
import { lazy } from 'solid-js'

export const agentsRoutes: RouteDefinition[] = [{ path: '/agents', component: lazy(() => import('./agents-page.tsx').then((m) => ({ default: m.AgentsPage }))) }]
