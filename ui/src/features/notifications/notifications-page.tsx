import { PageHeader } from '../../components/page-header.tsx'

export function NotificationsPage() {
  return <PageHeader title="Notifications" subtitle="Coming in this release." />
}
