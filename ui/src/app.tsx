import { Navigate, Router, useLocation, type RouteDefinition, type RouteSectionProps } from '@solidjs/router'
import { createResource, Match, Switch } from 'solid-js'
import { ErrorPanel } from './components/error-panel.tsx'
import { Shell } from './components/shell.tsx'
import { agentsRoutes } from './features/agents/routes.tsx'
import { auditRoutes } from './features/audit/routes.tsx'
import { AccountSetupPage } from './features/auth/account-setup-page.tsx'
import { SignInPage } from './features/auth/sign-in-page.tsx'
import { credentialsRoutes } from './features/credentials/routes.tsx'
import { DashboardPage } from './features/dashboard/dashboard-page.tsx'
import { jobsRoutes } from './features/jobs/routes.tsx'
import { NotFoundPage } from './features/not-found/not-found-page.tsx'
import { notificationsRoutes } from './features/notifications/routes.tsx'
import { runsRoutes } from './features/runs/routes.tsx'
import { schedulesRoutes } from './features/schedules/routes.tsx'
import { settingsRoutes } from './features/settings/routes.tsx'
import { targetsRoutes } from './features/targets/routes.tsx'
import { usersRoutes } from './features/users/routes.tsx'
import { loadSession, me, pendingSetup } from './session.ts'

/** Every page but sign-in: the session is checked first, then any setup the account still needs. */
function Authenticated(props: RouteSectionProps) {
  const location = useLocation()
  const [session, { refetch }] = createResource(loadSession)
  return (
    <Switch fallback={<div class="boot" aria-busy="true">Loading…</div>}>
      <Match when={session.error as unknown}>{(err) => <ErrorPanel title="Could not reach the controller" error={err()} onRetry={() => void refetch()} />}</Match>
      <Match when={me() === null}>
        <Navigate href={`/login?next=${encodeURIComponent(location.pathname + location.search)}`} />
      </Match>
      <Match when={me() && pendingSetup()}>
        <AccountSetupPage />
      </Match>
      <Match when={me()}>
        <Shell {...props} />
      </Match>
    </Switch>
  )
}

const routes: RouteDefinition[] = [
  { path: '/login', component: SignInPage },
  {
    path: '/',
    component: Authenticated,
    children: [
      { path: '/', component: DashboardPage },
      ...runsRoutes,
      ...jobsRoutes,
      ...schedulesRoutes,
      ...targetsRoutes,
      ...agentsRoutes,
      ...credentialsRoutes,
      ...notificationsRoutes,
      ...usersRoutes,
      ...auditRoutes,
      ...settingsRoutes,
      { path: '*404', component: NotFoundPage },
    ],
  },
]

export function App() {
  return <Router>{routes}</Router>
}
