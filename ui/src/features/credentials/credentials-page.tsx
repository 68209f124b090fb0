import { PageHeader } from '../../components/page-header.tsx'

export function CredentialsPage() {
  return <PageHeader title="Credentials" subtitle="Coming in this release." />
}
