import type { RouteDefinition } from '@solidjs/router'
import { lazy } from 'solid-js'

export const settingsRoutes: RouteDefinition[] = [{ path: '/settings', component: lazy(() => import('./settings-page.tsx').then((m) => ({ default: m.SettingsPage }))) }]
