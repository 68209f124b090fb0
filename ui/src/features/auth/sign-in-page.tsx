import { useNavigate, useSearchParams } from '@solidjs/router'
import { createSignal, Show } from 'solid-js'
import { ApiError } from '../../api.ts'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { Field } from '../../components/form.tsx'
import { signIn } from '../../session.ts'

/** Username and password, then — for users with MFA — a code from their authenticator app. */
export function SignInPage() {
  const navigate = useNavigate()
  const [params] = useSearchParams<{ next?: string }>()
  const [username, setUsername] = createSignal('')
  const [password, setPassword] = createSignal('')
  const [code, setCode] = createSignal('')
  const [mfa, setMfa] = createSignal(false)
  const [error, setError] = createSignal<ApiError | null>(null)
  const [pending, setPending] = createSignal(false)
  document.title = 'Sign in · OpsConductor'

  const submit = async (e: Event) => {
    e.preventDefault()
    setPending(true)
    setError(null)
    try {
      const result = await signIn({ username: username(), password: password(), ...(mfa() ? { totp: code().trim() } : {}) })
      if (result.ok) {
        // Only a path inside the app: never an absolute URL from the query string.
        const next = params.next && params.next.startsWith('/') && !params.next.startsWith('//') ? params.next : '/'
        navigate(next, { replace: true })
      } else if (result.mfaRequired && !mfa()) {
        setMfa(true)
      } else {
        setError(result.error)
      }
    } finally {
      setPending(false)
    }
  }

  return (
    <main class="sign-in">
      <form class="card sign-in-card" onSubmit={submit} aria-labelledby="sign-in-title">
        <div class="brand sign-in-brand">
          <img class="brand-mark" src="/favicon.svg" alt="" width="28" height="28" />
          <span>OpsConductor</span>
        </div>
        <h1 id="sign-in-title">{mfa() ? 'Two-factor code' : 'Sign in'}</h1>
        <Show
          when={mfa()}
          fallback={
            <>
              <Field label="Username" name="username" autocomplete="username" required value={username()} onInput={(e) => setUsername(e.currentTarget.value)} autofocus />
              <Field label="Password" name="password" type="password" autocomplete="current-password" required value={password()} onInput={(e) => setPassword(e.currentTarget.value)} />
            </>
          }
        >
          <Field
            label="Code from your authenticator app (or a recovery code)"
            name="totp"
            inputmode="numeric"
            autocomplete="one-time-code"
            required
            value={code()}
            onInput={(e) => setCode(e.currentTarget.value)}
            autofocus
          />
        </Show>
        <Show when={error()}>{(err) => <ErrorPanel title="Sign-in failed" error={err()} />}</Show>
        <div class="form-actions">
          <Show when={mfa()}>
            <button type="button" class="button" onClick={() => (setMfa(false), setCode(''), setError(null))}>
              Back
            </button>
          </Show>
          <button type="submit" class="button primary" disabled={pending()}>
            {pending() ? 'Signing in…' : mfa() ? 'Verify' : 'Sign in'}
          </button>
        </div>
      </form>
    </main>
  )
}
