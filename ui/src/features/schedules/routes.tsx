import type { RouteDefinition } from '@solidjs/router'
import { lazy } from 'solid-js'

const List = lazy(() => import('./schedules-list-page.tsx').then((m) => ({ default: m.SchedulesListPage })))
const Form = lazy(() => import('./schedule-form-page.tsx').then((m) => ({ default: m.ScheduleFormPage })))
const Maintenance = lazy(() => import('./maintenance-page.tsx').then((m) => ({ default: m.MaintenancePage })))
const MaintenanceForm = lazy(() => import('./maintenance-form-page.tsx').then((m) => ({ default: m.MaintenanceFormPage })))

export const schedulesRoutes: RouteDefinition[] = [
  { path: '/schedules', component: List },
  { path: '/schedules/new', component: Form },
  { path: '/schedules/maintenance', component: Maintenance },
  { path: '/schedules/maintenance/new', component: MaintenanceForm },
  { path: '/schedules/maintenance/:id', component: MaintenanceForm },
  { path: '/schedules/:id', component: Form },
]
