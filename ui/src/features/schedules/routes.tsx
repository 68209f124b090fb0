import type { RouteDefinition } from '@solidjs/router'
import { lazy } from 'solid-js'

export const schedulesRoutes: RouteDefinition[] = [{ path: '/schedules', component: lazy(() => import('./schedules-page.tsx').then((m) => ({ default: m.SchedulesPage }))) }]
