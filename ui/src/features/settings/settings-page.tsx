import { createEffect, createSignal, on, Show } from 'solid-js'
import type { z } from 'zod'
import type { UpdateMeInput } from '../../../../controller/src/auth/service.ts'
import { send, type api, type Ok } from '../../api.ts'
import { ConfirmButton } from '../../components/dialog.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { createSubmit, Field } from '../../components/form.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { can, me, refreshMe, signOut } from '../../session.ts'
import { ApiTokensSection } from './api-tokens-section.tsx'
import { MfaSection } from './mfa-section.tsx'
import { SavedNote, Section } from './section.tsx'
import { SecuritySection } from './security-section.tsx'
import './settings.css'

type MeAfterUpdate = Ok<Awaited<ReturnType<typeof api.auth.me.$put>>>
type UpdateMe = z.input<typeof UpdateMeInput>

/** Everyone's own account (profile, password, MFA, API tokens) and, for admins, installation security. */
export function SettingsPage() {
  return (
    <>
      <PageHeader title="Settings" subtitle="Your profile, how you sign in, and your API tokens." />
      <div class="settings">
        <ProfileSection />
        <PasswordSection />
        <MfaSection />
        <ApiTokensSection />
        <SessionsSection />
        <Show when={can('admin')}>
          <SecuritySection />
        </Show>
      </div>
    </>
  )
}

function ProfileSection() {
  const [displayName, setDisplayName] = createSignal('')
  const [email, setEmail] = createSignal('')
  const [saved, setSaved] = createSignal(false)
  createEffect(
    on(
      () => [me()?.display_name, me()?.email] as const,
      ([d, e]) => {
        setDisplayName(d ?? '')
        setEmail(e ?? '')
      },
    ),
  )
  const form = createSubmit(async () => {
    setSaved(false)
    const body: UpdateMe = { display_name: displayName().trim() || null, email: email().trim() || null }
    await send<MeAfterUpdate>('PUT', '/api/v1/auth/me', body)
    await refreshMe()
    setSaved(true)
  })
  const edited = () => setSaved(false)
  return (
    <Section id="profile" title="Profile" intro="How you appear in the console and in the audit log's details.">
      <form onSubmit={(e) => void form.submit(e)} novalidate>
        <dl class="facts profile-facts">
          <dt>Username</dt>
          <dd>{me()?.username}</dd>
          <dt>Role</dt>
          <dd>{me()?.role}</dd>
        </dl>
        <div class="form-grid">
          <Field label="Display name" name="display_name" autocomplete="name" value={displayName()} onInput={(e) => (setDisplayName(e.currentTarget.value), edited())} error={form.errors()['display_name']} />
          <Field label="Email" name="email" type="email" autocomplete="email" value={email()} onInput={(e) => (setEmail(e.currentTarget.value), edited())} error={form.errors()['email']} />
        </div>
        <Show when={form.error() && !form.errors()['display_name'] && !form.errors()['email']}>
          <ErrorPanel title="Could not save the profile" error={form.error()} />
        </Show>
        <div class="form-actions">
          <SavedNote when={saved()} text="Profile saved." />
          <button type="submit" class="button primary" disabled={form.pending()}>
            Save profile
          </button>
        </div>
      </form>
    </Section>
  )
}

function PasswordSection() {
  const [current, setCurrent] = createSignal('')
  const [next, setNext] = createSignal('')
  const [again, setAgain] = createSignal('')
  const [mismatch, setMismatch] = createSignal(false)
  const [saved, setSaved] = createSignal(false)
  const form = createSubmit(async () => {
    await send<MeAfterUpdate>('PUT', '/api/v1/auth/me', { current_password: current(), new_password: next() } satisfies UpdateMe)
    setCurrent('')
    setNext('')
    setAgain('')
    setSaved(true)
  })
  const submit = (e: Event) => {
    e.preventDefault()
    setSaved(false)
    setMismatch(next() !== again())
    if (!mismatch()) void form.submit()
  }
  return (
    <Section id="password" title="Password" intro="Changing it signs you out everywhere else; this session stays signed in.">
      <form onSubmit={submit} novalidate>
        <div class="form-grid">
          <Field label="Current password" type="password" autocomplete="current-password" required value={current()} onInput={(e) => setCurrent(e.currentTarget.value)} error={form.errors()['current_password']} />
          <Field label="New password" type="password" autocomplete="new-password" required value={next()} onInput={(e) => setNext(e.currentTarget.value)} error={form.errors()['new_password']} hint="At least 12 characters; not your username." />
          <Field label="New password again" type="password" autocomplete="new-password" required value={again()} onInput={(e) => setAgain(e.currentTarget.value)} error={mismatch() ? 'the two passwords differ' : undefined} />
        </div>
        <Show when={form.error() && !form.errors()['current_password'] && !form.errors()['new_password']}>
          <ErrorPanel title="Could not change the password" error={form.error()} />
        </Show>
        <div class="form-actions">
          <SavedNote when={saved()} text="Password changed. Your other sessions were signed out." />
          <button type="submit" class="button primary" disabled={form.pending()}>
            Change password
          </button>
        </div>
      </form>
    </Section>
  )
}

function SessionsSection() {
  return (
    <Section id="sessions" title="Sessions" intro="Signed in on a computer you no longer use? End every session of your account, this one included. API tokens keep working.">
      <div class="form-actions start">
        <ConfirmButton
          label="Sign out everywhere"
          title="Sign out everywhere?"
          confirmLabel="Sign out everywhere"
          danger
          errorTitle="Could not end the sessions"
          action={async () => {
            await send('POST', '/api/v1/auth/revoke-all', {})
            // The controller ended this session too (and cleared its cookies): back to the sign-in page.
            await signOut().catch(() => {})
          }}
        >
          <p>Every browser signed in as {me()?.username}, this one included, must sign in again.</p>
        </ConfirmButton>
      </div>
    </Section>
  )
}
