import { PageHeader } from '../../components/page-header.tsx'

export function TargetsPage() {
  return <PageHeader title="Targets" subtitle="Coming in this release." />
}
