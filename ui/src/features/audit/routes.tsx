import type { RouteDefinition } from '@solidjs/router'
import { lazy } from 'solid-js'

export const auditRoutes: RouteDefinition[] = [{ path: '/audit', component: lazy(() => import('./audit-page.tsx').then((m) => ({ default: m.AuditPage }))) }]
