import type { RouteDefinition } from '@solidjs/router'
import { lazy } from 'solid-js'

export const jobsRoutes: RouteDefinition[] = [{ path: '/jobs', component: lazy(() => import('./jobs-page.tsx').then((m) => ({ default: m.JobsPage }))) }]
