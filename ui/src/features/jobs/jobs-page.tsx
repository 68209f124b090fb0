import { PageHeader } from '../../components/page-header.tsx'

export function JobsPage() {
  return <PageHeader title="Jobs" subtitle="Coming in this release." />
}
