import { A, useSearchParams } from '@solidjs/router'
import { createResource, createSignal, For, onCleanup, Show } from 'solid-js'
import { DataTable } from '../../components/data-table.tsx'
import { Field, SelectField } from '../../components/form.tsx'
import { formatDateTime } from '../../components/format.ts'
import { EmptyState, Loaded } from '../../components/loaded.tsx'
import { NewLink, PageHeader } from '../../components/page-header.tsx'
import { can } from '../../session.ts'
import { credentialSummary, listCredentials, TYPE_LABELS, type CredentialType } from './data.ts'
import '../targets/targets.css'

/** The vault's contents (metadata only): operators read it to pick credentials; admins manage it. */
export function CredentialsPage() {
  const [params, setParams] = useSearchParams<{ q?: string; type?: string }>()
  const [q, setQ] = createSignal(params.q ?? '')
  let debounce: ReturnType<typeof setTimeout> | undefined
  onCleanup(() => clearTimeout(debounce))
  const query = () => ({ q: params.q?.trim() || undefined, type: (params.type || undefined) as CredentialType | undefined })
  const [credentials, { refetch }] = createResource(query, (qy) => listCredentials({ ...(qy.q ? { q: qy.q } : {}), ...(qy.type ? { type: qy.type } : {}) }))
  const filtered = () => !!(params.q || params.type)

  return (
    <div class="targets-area">
      <PageHeader
        title="Credentials"
        subtitle="Secrets for reaching hosts and services. Secrets are write-only: the API never returns them."
        actions={
          <NewLink href="/credentials/new" role="admin">
            New credential
          </NewLink>
        }
      />
      <form class="toolbar cred-filters" role="search" aria-label="Filter credentials" onSubmit={(e) => e.preventDefault()}>
        <Field
          label="Search"
          type="search"
          placeholder="Name"
          value={q()}
          onInput={(e) => {
            const v = e.currentTarget.value
            setQ(v)
            clearTimeout(debounce)
            debounce = setTimeout(() => setParams({ q: v || undefined }, { replace: true }), 250)
          }}
        />
        <SelectField label="Type" value={params.type ?? ''} onChange={(e) => setParams({ type: e.currentTarget.value || undefined })}>
          <option value="">Any</option>
          <For each={Object.entries(TYPE_LABELS) as [CredentialType, string][]}>{([v, l]) => <option value={v}>{l}</option>}</For>
        </SelectField>
      </form>
      <Loaded resource={credentials} what="credentials" onRetry={() => void refetch()}>
        {() => (
          <Show
            when={credentials.latest?.length}
            fallback={
              <EmptyState title={filtered() ? 'No credentials match' : 'No credentials yet'}>
                <Show when={!filtered()}>
                  <p>Add an SSH key, a password or a token, then pick it on a target.</p>
                  <Show when={can('admin')}>
                    <p class="empty-actions">
                      <A href="/credentials/new" class="button primary">
                        New credential
                      </A>
                    </p>
                  </Show>
                </Show>
              </EmptyState>
            }
          >
            <DataTable label="Credentials" columns={['Name', 'Type', 'Details', 'Updated']} busy={credentials.loading} class="credentials-table" each={credentials.latest}>
              {(c) => (
                <tr>
                  <td>
                    <A href={`/credentials/${c.id}`}>{c.name}</A>
                  </td>
                  <td>{TYPE_LABELS[c.type]}</td>
                  <td class="mono" title={credentialSummary(c)}>
                    {credentialSummary(c) || '—'}
                  </td>
                  <td>
                    {formatDateTime(c.updated_at)}
                    <Show when={c.updated_by}> by {c.updated_by}</Show>
                  </td>
                </tr>
              )}
            </DataTable>
          </Show>
        )}
      </Loaded>
    </div>
  )
}
