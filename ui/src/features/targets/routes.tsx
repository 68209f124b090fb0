import type { RouteDefinition } from '@solidjs/router'
import { lazy } from 'solid-js'

export const targetsRoutes: RouteDefinition[] = [{ path: '/targets', component: lazy(() => import('./targets-page.tsx').then((m) => ({ default: m.TargetsPage }))) }]
