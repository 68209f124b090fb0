import type { RouteDefinition } from '@solidjs/router'
import { lazy } from 'solid-js'

const JobsPage = lazy(() => import('./jobs-page.tsx').then((m) => ({ default: m.JobsPage })))
const JobPage = lazy(() => import('./job-page.tsx').then((m) => ({ default: m.JobPage })))
const JobBuilderPage = lazy(() => import('./job-builder-page.tsx').then((m) => ({ default: m.JobBuilderPage })))

export const jobsRoutes: RouteDefinition[] = [
  { path: '/jobs', component: JobsPage },
  { path: '/jobs/new', component: JobBuilderPage },
  { path: '/jobs/:id', component: JobPage },
  { path: '/jobs/:id/edit', component: JobBuilderPage },
]
