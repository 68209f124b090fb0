import { Route, Router } from '@solidjs/router'
import { Shell } from './components/shell.tsx'
import { DashboardPage } from './features/dashboard/dashboard-page.tsx'
import { NotFoundPage } from './features/not-found/not-found-page.tsx'

export function App() {
  return (
    <Router root={Shell}>
      <Route path="/" component={DashboardPage} />
      <Route path="*404" component={NotFoundPage} />
    </Router>
  )
}
