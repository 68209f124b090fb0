import { createEffect, createResource, createSignal, For, Show } from 'solid-js'
import type { z } from 'zod'
import type { CreateApiTokenInput } from '../../../../controller/src/api-tokens/service.ts'
import { ROLES, type Role } from '../../../../controller/src/auth/roles.ts'
import { api, send, unwrap, type Ok } from '../../api.ts'
import { createAction } from '../../components/action.ts'
import { Badge } from '../../components/badge.tsx'
import { SecretValue } from '../../components/copy.tsx'
import { DataTable } from '../../components/data-table.tsx'
import { ConfirmDialog } from '../../components/dialog.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { createSubmit, Field, SelectField } from '../../components/form.tsx'
import { formatDay } from '../../components/format.ts'
import { EmptyState, Loaded } from '../../components/loaded.tsx'
import { Time } from '../../components/time.tsx'
import { can, me } from '../../session.ts'
import { Section } from './section.tsx'

type TokenList = Ok<Awaited<ReturnType<(typeof api)['api-tokens']['$get']>>>
type Token = TokenList['items'][number]
type Created = Ok<Awaited<ReturnType<(typeof api)['api-tokens']['$post']>>>
type CreateBody = z.input<typeof CreateApiTokenInput>

const EXPIRY: { value: string; label: string; days: number | null }[] = [
  { value: '7', label: '7 days', days: 7 },
  { value: '30', label: '30 days', days: 30 },
  { value: '90', label: '90 days', days: 90 },
  { value: '365', label: '1 year', days: 365 },
  { value: 'never', label: 'Never', days: null },
  { value: 'custom', label: 'On a date…', days: null },
]

function tokenState(t: Token, now = Date.now()): 'active' | 'revoked' | 'expired' {
  if (t.revoked_at) return 'revoked'
  if (t.expires_at && Date.parse(t.expires_at) <= now) return 'expired'
  return 'active'
}

/** The signed-in user's API tokens: create (the secret is shown once), see when each was used, revoke. */
export function ApiTokensSection() {
  const [tokens, { refetch }] = createResource(() => unwrap(api['api-tokens'].$get({ query: {} }), 'GET /api-tokens'))
  // The list as shown: loaded from the server, then kept current by this page's own changes.
  const [items, setItems] = createSignal<Token[]>([])
  createEffect(() => {
    if (tokens.state === 'ready') setItems(tokens().items)
  })
  const [created, setCreated] = createSignal<Created | null>(null)
  const [revoking, setRevoking] = createSignal<Token | null>(null)
  const replace = (t: Token) => setItems(items().map((x) => (x.id === t.id ? t : x)))

  return (
    <Section
      id="api-tokens"
      title="API tokens"
      intro="For scripts and CI: send Authorization: Bearer <token>. A token acts as you, with at most the role you give it (never more than yours)."
    >
      <Show when={created()} keyed>
        {(c) => (
          <div class="once-warning new-token" role="region" aria-label="New API token">
            <p>
              <strong>Copy the token “{c.name}” now.</strong> This is the only time it is shown: store it in your secret manager. If you lose it, revoke it and create another.
            </p>
            <SecretValue id="new-token-value" label="Your new token" copyLabel="Copy token" value={c.token} />
            <div class="form-actions start">
              <button type="button" class="button" onClick={() => setCreated(null)}>
                I have stored it
              </button>
            </div>
          </div>
        )}
      </Show>
      <CreateToken
        onCreated={(c) => {
          const { token: _secret, ...dto } = c
          setItems([dto, ...items()])
          setCreated(c)
          document.getElementById('new-token-value')?.focus()
        }}
      />
      <h3 class="subheading">Your tokens</h3>
      <Loaded resource={tokens} what="API tokens" onRetry={() => void refetch()}>
        {() => (
          <Show when={items().length > 0} fallback={<EmptyState title="No API tokens yet">{<p>Create one above for a script or a CI pipeline.</p>}</EmptyState>}>
            <DataTable label="Your API tokens" columns={['Name', 'Token', 'Role', 'Created', 'Last used', 'Expires', 'Status', '']} focusable class="tokens-table" each={items()}>
              {(t) => (
                <tr data-token={t.name} classList={{ 'row-inactive': tokenState(t) !== 'active' }}>
                  <td class="token-name">{t.name}</td>
                  <td class="mono">{t.prefix}…</td>
                  <td>{t.role}</td>
                  <td>
                    <Time iso={t.created_at} />
                  </td>
                  <td>
                    <Time iso={t.last_used_at} never="Never" />
                  </td>
                  <td>
                    <Show when={t.expires_at} fallback={<span class="muted">Never</span>}>
                      {(at) => <time datetime={at()}>{formatDay(at())}</time>}
                    </Show>
                  </td>
                  <td>
                    {{ active: <Badge tone="good">Active</Badge>, revoked: <Badge tone="bad">Revoked</Badge>, expired: <Badge tone="neutral">Expired</Badge> }[tokenState(t)]}
                  </td>
                  <td>
                    <Show when={!t.revoked_at}>
                      <button type="button" class="button small danger" aria-label={`Revoke token ${t.name}`} onClick={() => setRevoking(t)}>
                        Revoke
                      </button>
                    </Show>
                  </td>
                </tr>
              )}
            </DataTable>
          </Show>
        )}
      </Loaded>
      <Show when={revoking()} keyed>
        {(t) => <RevokeToken token={t} onClose={() => setRevoking(null)} onRevoked={replace} />}</Show>
    </Section>
  )
}

function CreateToken(props: { onCreated: (c: Created) => void }) {
  const mine = () => (me()?.role ?? 'viewer') as Role
  const roles = () => ROLES.filter((r) => can(r))
  const [name, setName] = createSignal('')
  const [role, setRole] = createSignal<Role | ''>('')
  const [expiry, setExpiry] = createSignal('90')
  const [date, setDate] = createSignal('')
  const form = createSubmit(async () => {
    const choice = EXPIRY.find((e) => e.value === expiry())
    let expiresAt: string | undefined
    if (choice?.days) expiresAt = new Date(Date.now() + choice.days * 86_400_000).toISOString()
    // A chosen day: the token works until the end of that day, local time.
    if (expiry() === 'custom' && date()) expiresAt = new Date(`${date()}T23:59:59`).toISOString()
    const body: CreateBody = { name: name().trim(), role: role() || mine(), ...(expiresAt ? { expires_at: expiresAt } : {}) }
    const created = await send<Created>('POST', '/api/v1/api-tokens', body)
    setName('')
    props.onCreated(created)
  })
  const placed = ['name', 'role', 'expires_at']
  return (
    <form class="create-token" onSubmit={(e) => void form.submit(e)} novalidate aria-label="Create an API token">
      <div class="form-grid">
        <Field label="Token name" name="name" required placeholder="ci-deploy" value={name()} onInput={(e) => setName(e.currentTarget.value)} error={form.errors()['name']} />
        <SelectField label="Token role" name="role" value={role() || mine()} onChange={(e) => setRole(e.currentTarget.value as Role)} error={form.errors()['role']}>
          <For each={roles()}>{(r) => (
            <option value={r} selected={(role() || mine()) === r}>
              {r}
            </option>
          )}</For>
        </SelectField>
        <SelectField label="Expires" name="expiry" value={expiry()} onChange={(e) => setExpiry(e.currentTarget.value)} error={expiry() === 'custom' ? undefined : form.errors()['expires_at']}>
          <For each={EXPIRY}>{(e) => (
            <option value={e.value} selected={expiry() === e.value}>
              {e.label}
            </option>
          )}</For>
        </SelectField>
        <Show when={expiry() === 'custom'}>
          <Field label="Expiry date" type="date" required value={date()} onInput={(e) => setDate(e.currentTarget.value)} error={form.errors()['expires_at']} />
        </Show>
      </div>
      <Show when={form.error() && !placed.some((p) => form.errors()[p])}>
        <ErrorPanel title="Could not create the token" error={form.error()} />
      </Show>
      <div class="form-actions">
        <button type="submit" class="button primary" disabled={form.pending()}>
          Create token
        </button>
      </div>
    </form>
  )
}

function RevokeToken(props: { token: Token; onClose: () => void; onRevoked: (t: Token) => void }) {
  const revoke = createAction(async () => {
    props.onRevoked(await send<Token>('DELETE', `/api/v1/api-tokens/${props.token.id}`))
    props.onClose()
  })
  return (
    <ConfirmDialog
      title={`Revoke token ${props.token.name}?`}
      confirmLabel="Revoke token"
      danger
      pending={revoke.pending()}
      onConfirm={() => void revoke.run()}
      onCancel={props.onClose}
      error={revoke.error()}
      errorTitle="Could not revoke the token"
    >
      <p>
        Anything still using <span class="mono">{props.token.prefix}…</span> is refused from its next request. This cannot be undone.
      </p>
    </ConfirmDialog>
  )
}
