import { A, useLocation } from '@solidjs/router'
import { PageHeader } from '../../components/page-header.tsx'

export function NotFoundPage() {
  const location = useLocation()
  return (
    <section class="not-found">
      <PageHeader title="Page not found" />
      <div class="card">
        <p>
          Nothing lives at <code>{location.pathname}</code>.
        </p>
        <A href="/" class="button">
          Back to the dashboard
        </A>
      </div>
    </section>
  )
}
