import type { RouteDefinition } from '@solidjs/router'
import { lazy } from 'solid-js'

export const credentialsRoutes: RouteDefinition[] = [{ path: '/credentials', component: lazy(() => import('./credentials-page.tsx').then((m) => ({ default: m.CredentialsPage }))) }]
