import { PageHeader } from '../../components/page-header.tsx'

export function AgentsPage() {
  return <PageHeader title="Agents" subtitle="Coming in this release." />
}
