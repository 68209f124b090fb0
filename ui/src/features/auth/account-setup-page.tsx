import { createSignal, For, Match, Show, Switch } from 'solid-js'
import { send } from '../../api.ts'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { createSubmit, Field } from '../../components/form.tsx'
import { me, pendingSetup, refreshMe, signOut } from '../../session.ts'

/** What a user must do before anything else: replace a generated password, or enrol MFA. */
export function AccountSetupPage() {
  document.title = 'Account setup · OpsConductor'
  return (
    <main class="sign-in">
      <div class="card sign-in-card">
        <Switch>
          <Match when={pendingSetup() === 'password_change'}>
            <PasswordChange />
          </Match>
          <Match when={pendingSetup() === 'mfa_enrollment'}>
            <MfaEnrollment />
          </Match>
        </Switch>
        <p class="hint">
          Signed in as <strong>{me()?.username}</strong> ·{' '}
          <button type="button" class="link-button" onClick={() => void signOut()}>
            Sign out
          </button>
        </p>
      </div>
    </main>
  )
}

function PasswordChange() {
  const [current, setCurrent] = createSignal('')
  const [next, setNext] = createSignal('')
  const [again, setAgain] = createSignal('')
  const [mismatch, setMismatch] = createSignal(false)
  const form = createSubmit(async () => {
    await send('PUT', '/api/v1/auth/me', { current_password: current(), new_password: next() })
    await refreshMe()
  })
  const submit = (e: Event) => {
    e.preventDefault()
    setMismatch(next() !== again())
    if (!mismatch()) void form.submit()
  }
  return (
    <form onSubmit={submit}>
      <h1>Choose your password</h1>
      <p class="subtitle">Your password was set by an administrator. Choose your own before you continue.</p>
      <Field label="Current password" type="password" autocomplete="current-password" required value={current()} onInput={(e) => setCurrent(e.currentTarget.value)} error={form.errors()['current_password']} />
      <Field label="New password" type="password" autocomplete="new-password" required value={next()} onInput={(e) => setNext(e.currentTarget.value)} error={form.errors()['new_password']} hint="At least 12 characters; not your username." />
      <Field label="New password again" type="password" autocomplete="new-password" required value={again()} onInput={(e) => setAgain(e.currentTarget.value)} error={mismatch() ? 'the two passwords differ' : undefined} />
      <Show when={form.error() && !Object.keys(form.errors()).length}>
        <ErrorPanel title="Could not change the password" error={form.error()} />
      </Show>
      <div class="form-actions">
        <button type="submit" class="button primary" disabled={form.pending()}>
          Change password
        </button>
      </div>
    </form>
  )
}

function MfaEnrollment() {
  const [enrolment, setEnrolment] = createSignal<{ secret: string; otpauth_uri: string } | null>(null)
  const [code, setCode] = createSignal('')
  const [recovery, setRecovery] = createSignal<string[] | null>(null)
  const start = createSubmit(async () => setEnrolment(await send<{ secret: string; otpauth_uri: string }>('POST', '/api/v1/auth/mfa/totp/enroll')))
  const confirm = createSubmit(async () => {
    const r = await send<{ recovery_codes?: string[] }>('POST', '/api/v1/auth/mfa/totp/confirm', { code: code().trim() })
    setRecovery(r.recovery_codes ?? [])
  })
  return (
    <div>
      <h1>Set up two-factor sign-in</h1>
      <Switch>
        <Match when={recovery()}>
          {(codes) => (
            <>
              <p>Two-factor sign-in is on. Keep these recovery codes somewhere safe — each works once, and they are shown only now.</p>
              <ul class="recovery-codes">
                <For each={codes()}>{(c) => <li class="mono">{c}</li>}</For>
              </ul>
              <div class="form-actions">
                <button type="button" class="button primary" onClick={() => void refreshMe()}>
                  Continue
                </button>
              </div>
            </>
          )}
        </Match>
        <Match when={enrolment()}>
          {(e) => (
            <form onSubmit={(ev) => void confirm.submit(ev)}>
              <p>Add this key to your authenticator app (or open the link on your phone), then enter the code it shows.</p>
              <p class="mono secret-key">{e().secret}</p>
              <p>
                <a href={e().otpauth_uri}>Open in authenticator app</a>
              </p>
              <Field label="Code" inputmode="numeric" autocomplete="one-time-code" required value={code()} onInput={(ev) => setCode(ev.currentTarget.value)} error={confirm.errors()['code']} />
              <Show when={confirm.error() && !confirm.errors()['code']}>
                <ErrorPanel title="That code did not work" error={confirm.error()} />
              </Show>
              <div class="form-actions">
                <button type="submit" class="button primary" disabled={confirm.pending()}>
                  Turn on
                </button>
              </div>
            </form>
          )}
        </Match>
        <Match when={true}>
          <p class="subtitle">An administrator requires two-factor sign-in for every account.</p>
          <Show when={start.error()}>
            <ErrorPanel title="Could not start the setup" error={start.error()} />
          </Show>
          <div class="form-actions">
            <button type="button" class="button primary" disabled={start.pending()} onClick={() => void start.submit()}>
              Start setup
            </button>
          </div>
        </Match>
      </Switch>
    </div>
  )
}
