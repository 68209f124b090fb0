import { A, useLocation, useNavigate, useParams } from '@solidjs/router'
import { createResource, For, Show } from 'solid-js'
import { Badge } from '../../components/badge.tsx'
import { CopyButton } from '../../components/copy.tsx'
import { ConfirmButton } from '../../components/dialog.tsx'
import { formatDateTime } from '../../components/format.ts'
import { Loaded } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { can } from '../../session.ts'
import { createNotice } from '../targets/parts.tsx'
import { credentialTargets, deleteCredential, getCredential, TYPE_LABELS, type Credential } from './data.ts'
import { DERIVED_LABELS, isSecret, SPECS, type FieldSpec } from './fields.ts'
import '../targets/targets.css'

/** One credential: its public fields and derived facts, which secrets are stored (never their values), and who uses it. */
export function CredentialPage() {
  const params = useParams<{ id: string }>()
  const [credential, { refetch }] = createResource(() => params.id, getCredential)
  return (
    <div class="targets-area">
      <Loaded resource={credential} what="the credential" onRetry={() => void refetch()}>
        {() => <CredentialView credential={credential.latest!} />}
      </Loaded>
    </div>
  )
}

function display(value: unknown): string {
  if (Array.isArray(value)) return value.join(', ')
  if (typeof value === 'boolean') return value ? 'yes' : 'no'
  if (typeof value === 'string' && /^\d{4}-\d\d-\d\dT/.test(value)) return formatDateTime(value)
  return String(value)
}

function CredentialView(props: { credential: Credential }) {
  const navigate = useNavigate()
  const location = useLocation<{ saved?: string }>()
  const notice = createNotice()
  if (location.state?.saved) notice.show(location.state.saved)
  const c = () => props.credential
  const specs = () => SPECS[c().type] as FieldSpec[]
  const publicFields = () => specs().filter((s) => !isSecret(s.kind) && c()[s.name] !== undefined && c()[s.name] !== null)
  const secretFields = () => specs().filter((s) => isSecret(s.kind) && c()[`has_${s.name}`] !== undefined)
  const derived = () => Object.keys(DERIVED_LABELS).filter((k) => c()[k] !== undefined && k !== 'public_key')
  const [usedBy, { refetch: refetchUsedBy }] = createResource(() => c().id, credentialTargets)


  return (
    <>
      <PageHeader
        title={c().name}
        subtitle={TYPE_LABELS[c().type]}
        actions={
          <Show when={can('admin')}>
            <A href={`/credentials/${c().id}/edit`} class="button">
              Edit
            </A>
            <ConfirmButton
              label="Delete"
              title="Delete credential"
              confirmLabel="Delete credential"
              danger
              errorTitle="Could not delete the credential"
              action={async () => {
                await deleteCredential(c().id)
                navigate('/credentials', { replace: true })
              }}
            >
              <p>
                Delete <strong>{c().name}</strong>? The secret is destroyed and cannot be recovered.
                <Show when={usedBy()?.items.length}>
                  {(n) => (
                    <>
                      {' '}
                      It is still used by {n()} {n() === 1 ? 'target' : 'targets'}, so the controller will refuse until {n() === 1 ? 'it uses' : 'they use'} another credential.
                    </>
                  )}
                </Show>
              </p>
            </ConfirmButton>
          </Show>
        }
      />
      <p class="crumbs">
        <A href="/credentials">← All credentials</A>
      </p>
      {notice.view()}
      <div class="card-grid detail-grid">
        <section class="card" aria-labelledby="cd-fields">
          <h2 id="cd-fields">Settings</h2>
          <dl class="facts">
            <Show when={c().description}>
              <dt>Description</dt>
              <dd>{c().description}</dd>
            </Show>
            <For each={publicFields()}>
              {(s) => (
                <>
                  <dt>{s.label}</dt>
                  <dd class={s.kind === 'pem' ? 'mono pem' : undefined}>{s.kind === 'select' ? (s.options?.find(([v]) => v === c()[s.name])?.[1] ?? display(c()[s.name])) : s.kind === 'pem' ? 'PEM stored' : display(c()[s.name])}</dd>
                </>
              )}
            </For>
            <For each={secretFields()}>
              {(s) => (
                <>
                  <dt>{s.label}</dt>
                  <dd>{c()[`has_${s.name}`] === true ? <Badge tone="good">stored</Badge> : <span class="muted">not set</span>}</dd>
                </>
              )}
            </For>
            <dt>Created</dt>
            <dd>
              {formatDateTime(c().created_at)}
              <Show when={c().created_by}> by {c().created_by}</Show>
            </dd>
            <dt>Updated</dt>
            <dd>
              {formatDateTime(c().updated_at)}
              <Show when={c().updated_by}> by {c().updated_by}</Show>
            </dd>
          </dl>
        </section>

        <Show when={derived().length || c().public_key}>
          <section class="card" aria-labelledby="cd-derived">
            <h2 id="cd-derived">{c().type === 'certificate' ? 'Certificate' : c().type === 'ssh_key' ? 'Key' : 'Details'}</h2>
            <dl class="facts">
              <For each={derived()}>
                {(k) => (
                  <>
                    <dt>{DERIVED_LABELS[k]}</dt>
                    <dd class={k === 'fingerprint' ? 'mono' : undefined}>{display(c()[k])}</dd>
                  </>
                )}
              </For>
            </dl>
            <Show when={c().public_key}>
              <p class="hint">Public key (for authorized_keys):</p>
              <p class="mono public-key">{String(c().public_key)}</p>
              <CopyButton text={String(c().public_key)} label="Copy public key" />
            </Show>
          </section>
        </Show>

        <section class="card" aria-labelledby="cd-used">
          <h2 id="cd-used">Used by</h2>
          <Loaded resource={usedBy} what="the targets using it" onRetry={() => void refetchUsedBy()}>
            {() => (
              <Show when={usedBy.latest?.items.length} fallback={<p class="muted">No target uses this credential.</p>}>
                <p>
                  {usedBy.latest!.items.length} {usedBy.latest!.items.length === 1 ? 'target' : 'targets'}:
                </p>
                <ul class="used-by">
                  <For each={usedBy.latest!.items.slice(0, 200)}>
                    {(t) => (
                      <li>
                        <A href={`/targets/${t.id}`}>{t.name}</A>
                      </li>
                    )}
                  </For>
                </ul>
                <Show when={usedBy.latest!.items.length > 200}>
                  <p class="hint">and {usedBy.latest!.items.length - 200} more</p>
                </Show>
              </Show>
            )}
          </Loaded>
        </section>
      </div>
    </>
  )
}
