import { createEffect, createMemo, createSignal, on, Show, type JSX } from 'solid-js'
import type { z } from 'zod'
import type { Role } from '../../../../controller/src/auth/roles.ts'
import type { UpdateUserInput } from '../../../../controller/src/users/service.ts'
import { send, type api, type Ok } from '../../api.ts'
import { createAction } from '../../components/action.ts'
import { SecretValue } from '../../components/copy.tsx'
import { ConfirmDialog, Dialog } from '../../components/dialog.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { createSubmit, Field, SelectField } from '../../components/form.tsx'
import { formatDateTime } from '../../components/format.ts'
import { Time } from '../../components/time.tsx'
import { me } from '../../session.ts'
import { ROLE_HINT, ROLE_LABEL, RoleOptions, UserStatus, type User } from './users-page.tsx'

type Updated = Ok<Awaited<ReturnType<(typeof api.users)[':id']['$put']>>>
type Revoked = Ok<Awaited<ReturnType<(typeof api.auth)['revoke-all']['$post']>>>
type Update = z.input<typeof UpdateUserInput>

interface Props {
  id: string
  /** The list the panel was opened from: it shows the current version of its user. */
  users: User[]
  onClose: () => void
  onChanged: (user: User) => void
  onDeleted: (user: User) => void
}

/** One user's details and everything an admin can do to the account, in a side panel. */
export function UserPanel(props: Props) {
  // The latest version of this user; once gone from the list (deleted), the last one seen.
  const user = createMemo<User | undefined>((last) => props.users.find((u) => u.id === props.id) ?? last)
  return <Show when={user()}>{(u) => <Panel {...props} user={u()} />}</Show>
}

function Panel(props: Omit<Props, 'users'> & { user: User }) {
  const self = () => props.user.id === me()?.id
  const update = (body: Update) => send<Updated>('PUT', `/api/v1/users/${props.id}`, body)
  const id = props.id
  return (
    <Dialog title={props.user.username} subtitle={<UserStatus user={props.user} />} onClose={props.onClose} variant="drawer" returnFocus={() => document.querySelector<HTMLElement>(`tr[data-user-id="${id}"] .user-link`)}>
      <dl class="facts user-facts">
        <dt>Role</dt>
        <dd>
          {ROLE_LABEL[props.user.role]} <span class="muted">— {ROLE_HINT[props.user.role]}</span>
        </dd>
        <dt>Last sign-in</dt>
        <dd>
          <Time iso={props.user.last_login_at} never="Never" />
        </dd>
        <dt>Created</dt>
        <dd>{formatDateTime(props.user.created_at)}</dd>
        <dt>Updated</dt>
        <dd>{formatDateTime(props.user.updated_at)}</dd>
        <dt>User id</dt>
        <dd class="id mono" title={props.user.id}>
          {props.user.id}
        </dd>
      </dl>
      <ProfileForm user={props.user} update={update} onChanged={props.onChanged} />
      <ResetPassword user={props.user} update={update} onChanged={props.onChanged} />
      <section class="panel-section" aria-labelledby="user-access-title">
        <h3 id="user-access-title">Access</h3>
        <Show when={self()}>
          <p class="hint">This is your own account: sign yourself out everywhere from Settings.</p>
        </Show>
        <div class="action-list">
          <Show when={!self()}>
            {/* One button that flips, so focus and the announced outcome stay put after the change. */}
            <Action
              label={props.user.disabled ? 'Enable account' : 'Disable account'}
              danger={!props.user.disabled}
              title={props.user.disabled ? undefined : `Disable ${props.user.username}?`}
              explain={<p>They can no longer sign in. Their sessions end now and their API tokens stop working. You can enable the account again later.</p>}
              run={() => {
                const disable = !props.user.disabled
                return update({ disabled: disable }).then((u) => (props.onChanged(u), disable ? 'Account disabled; its sessions ended.' : 'Account enabled.'))
              }}
            />
            <Action
              label="Revoke all sessions"
              title={`Revoke all sessions of ${props.user.username}?`}
              explain={<p>They are signed out everywhere at their next request and must sign in again. API tokens are not affected.</p>}
              run={() => send<Revoked>('POST', '/api/v1/auth/revoke-all', { user_id: props.user.id }).then((r) => `${r.sessions_revoked} ${r.sessions_revoked === 1 ? 'session' : 'sessions'} revoked.`)}
            />
          </Show>
          <Action
              label="Reset two-factor sign-in"
              hidden={!props.user.mfa_enabled}
              danger
              title={`Reset two-factor sign-in for ${props.user.username}?`}
              explain={<p>Their authenticator app and recovery codes stop working; they sign in with the password alone until they set it up again. Use this when someone lost their device.</p>}
              run={() => update({ reset_mfa: true }).then(props.onChanged)}
              done="Two-factor sign-in reset."
            />
          <Show when={!self()}>
            <Action
              label="Delete user"
              danger
              title={`Delete ${props.user.username}?`}
              explain={<p>The account and its API tokens are removed for good. The audit log keeps what they did. To keep the account but stop access, disable it instead.</p>}
              run={() => send<Updated>('DELETE', `/api/v1/users/${props.user.id}`).then(props.onDeleted)}
            />
          </Show>
        </div>
      </section>
    </Dialog>
  )
}

function ProfileForm(props: { user: User; update: (b: Update) => Promise<Updated>; onChanged: (u: User) => void }) {
  const [displayName, setDisplayName] = createSignal('')
  const [email, setEmail] = createSignal('')
  const [role, setRole] = createSignal<Role>('viewer')
  const [saved, setSaved] = createSignal(false)
  // The form shows the stored values, and again after every save (or an edit elsewhere in the panel).
  createEffect(
    on(
      () => [props.user.display_name, props.user.email, props.user.role] as const,
      ([d, e, r]) => {
        setDisplayName(d ?? '')
        setEmail(e ?? '')
        setRole(r)
      },
    ),
  )
  const form = createSubmit(async () => {
    setSaved(false)
    const body: Update = {}
    const d = displayName().trim()
    const e = email().trim()
    if (d !== (props.user.display_name ?? '')) body.display_name = d || null
    if (e !== (props.user.email ?? '')) body.email = e || null
    if (role() !== props.user.role) body.role = role()
    if (Object.keys(body).length > 0) props.onChanged(await props.update(body))
    setSaved(true)
  })
  const unplaced = () => form.error() && !['display_name', 'email', 'role'].some((p) => form.errors()[p])
  return (
    <section class="panel-section" aria-labelledby="user-profile-title">
      <h3 id="user-profile-title">Profile and role</h3>
      <form onSubmit={(e) => void form.submit(e)} novalidate>
        <Field label="Display name" value={displayName()} onInput={(e) => (setDisplayName(e.currentTarget.value), setSaved(false))} error={form.errors()['display_name']} data-autofocus />
        <Field label="Email" type="email" value={email()} onInput={(e) => (setEmail(e.currentTarget.value), setSaved(false))} error={form.errors()['email']} />
        <SelectField label="Role" value={role()} onChange={(e) => (setRole(e.currentTarget.value as Role), setSaved(false))} error={form.errors()['role']}>
          <RoleOptions selected={role()} />
        </SelectField>
        <Show when={unplaced()}>
          <ErrorPanel title="Could not save" error={form.error()} />
        </Show>
        <div class="form-actions">
          <Show when={saved()}>
            <p class="saved" role="status">
              Saved.
            </p>
          </Show>
          <button type="submit" class="button primary" disabled={form.pending()}>
            Save changes
          </button>
        </div>
      </form>
    </section>
  )
}

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789'
/** 20 characters from the browser's CSPRNG (~115 bits), without look-alike characters. */
function generatePassword(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(20))
  return Array.from(bytes, (b) => ALPHABET[b % ALPHABET.length]).join('')
}

function ResetPassword(props: { user: User; update: (b: Update) => Promise<Updated>; onChanged: (u: User) => void }) {
  const [password, setPassword] = createSignal('')
  const [shown, setShown] = createSignal(false)
  const [done, setDone] = createSignal<string | null>(null)
  const form = createSubmit(async () => {
    const chosen = password()
    props.onChanged(await props.update({ password: chosen }))
    setPassword('')
    setDone(chosen)
    document.getElementById('reset-password-value')?.focus()
  })
  const self = () => props.user.id === me()?.id
  return (
    <section class="panel-section" aria-labelledby="user-password-title">
      <h3 id="user-password-title">Password</h3>
      <Show
        when={done()}
        keyed
        fallback={
          <form onSubmit={(e) => void form.submit(e)} novalidate>
            <p class="hint">
              {self() ? 'Sets your password; your other sessions end.' : `${props.user.username} must choose a new password at their next sign-in; their sessions end now.`}
            </p>
            <Field
              label="New password"
              type={shown() ? 'text' : 'password'}
              autocomplete="new-password"
              value={password()}
              onInput={(e) => setPassword(e.currentTarget.value)}
              error={form.errors()['password']}
              class="mono"
            />
            <Show when={form.error() && !form.errors()['password']}>
              <ErrorPanel title="Could not reset the password" error={form.error()} />
            </Show>
            <div class="form-actions">
              <button
                type="button"
                class="button"
                onClick={() => {
                  setPassword(generatePassword())
                  setShown(true)
                }}
              >
                Generate password
              </button>
              <button type="submit" class="button primary" disabled={form.pending() || !password()}>
                Reset password
              </button>
            </div>
          </form>
        }
      >
        {(chosen) => (
          <div class="once-warning">
            <p>The password was reset. It is shown only now: hand it over through a safe channel.</p>
            <SecretValue id="reset-password-value" label={`New password for ${props.user.username}`} copyLabel="Copy password" value={chosen} />
            <div class="form-actions">
              <button type="button" class="button" onClick={() => (setDone(null), setShown(false))}>
                Done
              </button>
            </div>
          </div>
        )}
      </Show>
    </section>
  )
}

/** A button for one account action; destructive ones ask first. The outcome is announced under the list. */
function Action(props: { label: string; hidden?: boolean; danger?: boolean; title?: string; explain?: JSX.Element; run: () => Promise<unknown>; done?: string }) {
  const [asking, setAsking] = createSignal(false)
  const [result, setResult] = createSignal('')
  const action = createAction(async () => {
    const out = await props.run()
    setAsking(false)
    setResult(typeof out === 'string' ? out : (props.done ?? 'Done.'))
  })
  const start = () => {
    setResult('')
    action.clear()
    if (props.title) setAsking(true)
    else void action.run()
  }
  return (
    <div class="action" classList={{ 'action-done': !!props.hidden }}>
      {/* Hidden once it no longer applies (MFA already reset), while its outcome stays readable. */}
      <Show when={!props.hidden}>
        <button type="button" class="button" classList={{ danger: !!props.danger }} disabled={action.pending()} onClick={start}>
          {props.label}
        </button>
      </Show>
      <Show when={result()}>
        <p class="saved" role="status">
          {result()}
        </p>
      </Show>
      <Show when={!asking() && action.error()}>
        <ErrorPanel title={`${props.label} failed`} error={action.error()} />
      </Show>
      <Show when={asking()}>
        <ConfirmDialog
          title={props.title!}
          confirmLabel={props.label}
          danger={props.danger}
          pending={action.pending()}
          onConfirm={() => void action.run()}
          onCancel={() => (setAsking(false), action.clear())}
          error={action.error()}
        >
          {props.explain}
        </ConfirmDialog>
      </Show>
    </div>
  )
}
