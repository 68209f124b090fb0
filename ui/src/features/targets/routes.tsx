import type { RouteDefinition } from '@solidjs/router'
import { lazy } from 'solid-js'

const TargetsPage = lazy(() => import('./targets-page.tsx').then((m) => ({ default: m.TargetsPage })))
const GroupsPage = lazy(() => import('./groups-page.tsx').then((m) => ({ default: m.GroupsPage })))
const ImportPage = lazy(() => import('./import-page.tsx').then((m) => ({ default: m.ImportPage })))
const NewTargetPage = lazy(() => import('./target-form.tsx').then((m) => ({ default: m.NewTargetPage })))
const EditTargetPage = lazy(() => import('./target-form.tsx').then((m) => ({ default: m.EditTargetPage })))
const TargetPage = lazy(() => import('./target-page.tsx').then((m) => ({ default: m.TargetPage })))

export const targetsRoutes: RouteDefinition[] = [
  { path: '/targets', component: TargetsPage },
  { path: '/targets/groups', component: GroupsPage },
  { path: '/targets/import', component: ImportPage },
  { path: '/targets/new', component: NewTargetPage },
  { path: '/targets/:id/edit', component: EditTargetPage },
  { path: '/targets/:id', component: TargetPage },
]
