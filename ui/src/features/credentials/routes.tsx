import type { RouteDefinition } from '@solidjs/router'
import { lazy } from 'solid-js'

const CredentialsPage = lazy(() => import('./credentials-page.tsx').then((m) => ({ default: m.CredentialsPage })))
const NewCredentialPage = lazy(() => import('./credential-form.tsx').then((m) => ({ default: m.NewCredentialPage })))
const EditCredentialPage = lazy(() => import('./credential-form.tsx').then((m) => ({ default: m.EditCredentialPage })))
const CredentialPage = lazy(() => import('./credential-page.tsx').then((m) => ({ default: m.CredentialPage })))

export const credentialsRoutes: RouteDefinition[] = [
  { path: '/credentials', component: CredentialsPage },
  { path: '/credentials/new', component: NewCredentialPage },
  { path: '/credentials/:id/edit', component: EditCredentialPage },
  { path: '/credentials/:id', component: CredentialPage },
]
