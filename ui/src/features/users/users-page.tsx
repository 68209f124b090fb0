import { createMemo, createSignal, For, Match, onCleanup, Show, Switch } from 'solid-js'
import type { Role } from '../../../../controller/src/auth/roles.ts'
import { api, unwrap, type Ok } from '../../api.ts'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { Field, SelectField } from '../../components/form.tsx'
import { EmptyState } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { me } from '../../session.ts'
import { CreateUserDialog } from './create-user-dialog.tsx'
import { Pill } from './shared/badges.tsx'
import { RequireRole } from './shared/forbidden.tsx'
import { createPaged } from './shared/paged.ts'
import { Time } from './shared/time.tsx'
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
          <For each={Object.entries(ROLE_LABEL)}>{([value, label]) => (
            <option value={value} selected={role() === value}>
              {label}
            </option>
          )}</For>
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
          <div class="table-wrap scroll-box" aria-busy={list.loading()} tabindex="0" role="region" aria-label="Users list">
            <table class="data users-table">
              <caption class="visually-hidden">Users</caption>
              <thead>
                <tr>
                  <th scope="col">User</th>
                  <th scope="col">Role</th>
                  <th scope="col">Status</th>
                  <th scope="col">Last sign-in</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                <For each={list.items()}>
                  {(user) => (
                    <tr data-user={user.username} data-user-id={user.id} classList={{ 'row-disabled': user.disabled }}>
                      <td>
                        <button type="button" class="link-button user-link" onClick={() => setOpenId(user.id)}>
                          {user.username}
                        </button>
                        <Show when={user.id === me()?.id}>
                          {' '}
                          <Pill tone="neutral">you</Pill>
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
                </For>
              </tbody>
            </table>
          </div>
          <div class="list-footer">
            <span class="hint">
              {list.items().length} {list.items().length === 1 ? 'user' : 'users'}
              {list.next() ? ' shown' : ''}
            </span>
            <Show when={list.next()}>
              <button type="button" class="button" disabled={list.loadingMore()} onClick={() => void list.loadMore()}>
                {list.loadingMore() ? 'Loading…' : 'Load more users'}
              </button>
            </Show>
          </div>
          <Show when={list.moreError()}>
            <ErrorPanel title="Could not load more users" error={list.moreError()} onRetry={() => void list.loadMore()} />
          </Show>
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
    <span class="pills">
      <Show when={props.user.disabled} fallback={<Pill tone="good">Active</Pill>}>
        <Pill tone="bad">Disabled</Pill>
      </Show>
      <Show when={props.user.mfa_enabled}>
        <Pill tone="accent">MFA on</Pill>
      </Show>
      <Show when={props.user.must_change_password}>
        <Pill tone="neutral">Must change password</Pill>
      </Show>
      <Show when={props.user.self_registered}>
        <Pill tone="neutral">Self-registered</Pill>
      </Show>
    </span>
  )
}
