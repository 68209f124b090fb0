import type { RouteDefinition } from '@solidjs/router'
import { lazy } from 'solid-js'

export const runsRoutes: RouteDefinition[] = [
  { path: '/runs', component: lazy(() => import('./runs-page.tsx').then((m) => ({ default: m.RunsPage }))) },
  { path: '/runs/:id', component: lazy(() => import('./run-page.tsx').then((m) => ({ default: m.RunPage }))) },
]
