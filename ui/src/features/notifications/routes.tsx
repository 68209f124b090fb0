import type { RouteDefinition } from '@solidjs/router'
import { lazy } from 'solid-js'

export const notificationsRoutes: RouteDefinition[] = [{ path: '/notifications', component: lazy(() => import('./notifications-page.tsx').then((m) => ({ default: m.NotificationsPage }))) }]
