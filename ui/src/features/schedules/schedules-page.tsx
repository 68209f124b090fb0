import { PageHeader } from '../../components/page-header.tsx'

export function SchedulesPage() {
  return <PageHeader title="Schedules" subtitle="Coming in this release." />
}
