import type { RouteDefinition } from '@solidjs/router'
import { lazy } from 'solid-js'

export const usersRoutes: RouteDefinition[] = [{ path: '/users', component: lazy(() => import('./users-page.tsx').then((m) => ({ default: m.UsersPage }))) }]
