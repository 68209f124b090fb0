import { createMemo, createSignal, For, Match, onCleanup, Show, Switch } from 'solid-js'
import type { Role } from '../../../../controller/src/auth/roles.ts'
import { api, unwrap, type Ok } from '../../api.ts'
import { Badge } from '../../components/badge.tsx'
import { DataTable } from '../../components/data-table.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { Field, SelectField } from '../../components/form.tsx'
import { EmptyState } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { createPaged, LoadMore } from '../../components/paged.tsx'
import { RequireRole } from '../../components/require-role.tsx'
import { Time } from '../../components/time.tsx'
import { me } from '../../session.ts'
import { CreateUserDialog } from './create-user-dialog.tsx'
import { UserPanel } from './user-panel.tsx'
import './users.css'

export type UserList = Ok<Awaited<ReturnType<typeof api.users.$get>>>
export type User = UserList['items'][number]

export const ROLE_LABEL: Record<Role, string> = { viewer: 'Viewer', operator: 'Operator', admin: 'Admin' }
export const ROLE_HINT: Record<Role, string> = {
  viewer: 'sees everything, changes nothing',
  operator: 'runs jobs, manages targets and credentials',
  admin: 'everything, including users and settings',
}

/** The roles as a select's options (`selected`: options exist after the select's value is set). */
export function RoleOptions(props: { selected: string; hints?: boolean }) {
  return (
    <For each={Object.entries(ROLE_LABEL)}>
      {([value, label]) => (
        <option value={value} selected={props.selected === value}>
          {label}
          {props.hints ? ` — ${ROLE_HINT[value as Role]}` : ''}
        </option>
      )}
    </For>
  )
}

export function UsersPage() {
  return (
    <RequireRole role="admin" page="The Users page">
      <UsersAdmin />
    </RequireRole>
  )
}

interface Filters {
  q: string
  role: '' | Role
  disabled: '' | 'true' | 'false'
}

function UsersAdmin() {
  const [search, setSearch] = createSignal('')
  const [role, setRole] = createSignal<Filters['role']>('')
  const [disabled, setDisabled] = createSignal<Filters['disabled']>('')
  // Typing waits for a pause before asking the server.
  const [q, setQ] = createSignal('')
  let debounce: ReturnType<typeof setTimeout> | undefined
  onCleanup(() => clearTimeout(debounce))
  const onSearch = (value: string) => {
    setSearch(value)
    clearTimeout(debounce)
    debounce = setTimeout(() => setQ(value.trim()), 250)
  }
  const filters = createMemo<Filters>(() => ({ q: q(), role: role(), disabled: disabled() }), { q: '', role: '', disabled: '' }, {
    equals: (a, b) => a.q === b.q && a.role === b.role && a.disabled === b.disabled,
  })
  const list = createPaged(filters, (f, cursor) =>
    unwrap(api.users.$get({ query: { limit: '100', cursor, q: f.q || undefined, role: f.role || undefined, disabled: f.disabled || undefined } }), 'GET /users'),
  )
  const filtered = () => !!(q() || role() || disabled())

  const [creating, setCreating] = createSignal(false)
  const [openId, setOpenId] = createSignal<string | null>(null)
  const [notice, setNotice] = createSignal('')

  return (
    <>
      <PageHeader
        title="Users"
        subtitle="Who can sign in, with which role."
        actions={
          <button type="button" class="button primary" onClick={() => setCreating(true)}>
            New user
          </button>
        }
      />
      <div class="toolbar users-toolbar" role="search" aria-label="Filter users">
        <Field label="Search" type="search" placeholder="Username, name or email" value={search()} onInput={(e) => onSearch(e.currentTarget.value)} />
        <SelectField label="Role" value={role()} onChange={(e) => setRole(e.currentTarget.value as Filters['role'])}>
          <option value="">All roles</option>
          <RoleOptions selected={role()} />
        </SelectField>
        <SelectField label="Status" value={disabled()} onChange={(e) => setDisabled(e.currentTarget.value as Filters['disabled'])}>
          <option value="">Any status</option>
          <option value="false">Active</option>
          <option value="true">Disabled</option>
        </SelectField>
      </div>
      <p class="visually-hidden" role="status">
        {notice()}
      </p>

      <Show when={list.error()}>
        <ErrorPanel title="Could not load users" error={list.error()} onRetry={() => void list.reload()} />
      </Show>
      <Switch>
        <Match when={!list.loaded() && !list.error()}>
          <div class="card card-loading" aria-busy="true">
            Loading users…
          </div>
        </Match>
        <Match when={list.error()}>{null}</Match>
        <Match when={list.loaded() && list.items().length === 0}>
          <EmptyState title={filtered() ? 'No users match these filters' : 'No users yet'}>
            <Show when={filtered()} fallback={<p>Create the first account with “New user”.</p>}>
              <p>Clear the search or pick another role or status.</p>
            </Show>
          </EmptyState>
        </Match>
        <Match when={list.loaded()}>
          <DataTable label="Users" columns={['User', 'Role', 'Status', 'Last sign-in', 'Created']} busy={list.loading()} focusable class="users-table" each={list.items()}>
            {(user) => (
              <tr data-user={user.username} data-user-id={user.id} classList={{ 'row-disabled': user.disabled }}>
                <td>
                  <button type="button" class="link-button user-link" onClick={() => setOpenId(user.id)}>
                    {user.username}
                  </button>
                  <Show when={user.id === me()?.id}>
                    {' '}
                    <Badge tone="neutral">you</Badge>
                  </Show>
                  <Show when={user.display_name || user.email}>
                    <div class="user-sub">{[user.display_name, user.email].filter(Boolean).join(' · ')}</div>
                  </Show>
                </td>
                <td>{ROLE_LABEL[user.role]}</td>
                <td>
                  <UserStatus user={user} />
                </td>
                <td>
                  <Time iso={user.last_login_at} never="Never" />
                </td>
                <td>
                  <Time iso={user.created_at} />
                </td>
              </tr>
            )}
          </DataTable>
          <LoadMore list={list} what="users">
            {list.items().length} {list.items().length === 1 ? 'user' : 'users'}
            {list.hasMore() ? ' shown' : ''}
          </LoadMore>
        </Match>
      </Switch>

      <Show when={creating()}>
        <CreateUserDialog
          onClose={() => setCreating(false)}
          onCreated={(user) => {
            list.prepend(user)
            setNotice(`Created ${user.username}`)
          }}
        />
      </Show>
      {/* Keyed on the id: edits re-render the panel in place; another user opens a new one. */}
      <Show when={openId()} keyed>
        {(id) => (
          <UserPanel
            id={id}
            users={list.items()}
            onClose={() => setOpenId(null)}
            onChanged={(updated) => list.update((u) => (u.id === updated.id ? updated : u))}
            onDeleted={(removed) => {
              setOpenId(null)
              list.remove((u) => u.id !== removed.id)
              setNotice(`Deleted ${removed.username}`)
            }}
          />
        )}
      </Show>
    </>
  )
}

/** Disabled, MFA, a pending password change: what an admin checks at a glance. */
export function UserStatus(props: { user: User }) {
  return (
    <span class="badges">
      <Show when={props.user.disabled} fallback={<Badge tone="good">Active</Badge>}>
        <Badge tone="bad">Disabled</Badge>
      </Show>
      <Show when={props.user.mfa_enabled}>
        <Badge tone="active">MFA on</Badge>
      </Show>
      <Show when={props.user.must_change_password}>
        <Badge tone="neutral">Must change password</Badge>
      </Show>
      <Show when={props.user.self_registered}>
        <Badge tone="neutral">Self-registered</Badge>
      </Show>
    </span>
  )
}
