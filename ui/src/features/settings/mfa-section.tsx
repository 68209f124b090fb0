import { createSignal, For, Match, Show, Switch } from 'solid-js'
import { send, type api, type Ok } from '../../api.ts'
import { Badge } from '../../components/badge.tsx'
import { CopyButton, SecretValue } from '../../components/copy.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { createSubmit, Field } from '../../components/form.tsx'
import { me, refreshMe } from '../../session.ts'
import { SavedNote, Section } from './section.tsx'

type Enrolment = Ok<Awaited<ReturnType<(typeof api.auth.mfa.totp)['enroll']['$post']>>>
type Confirmed = Ok<Awaited<ReturnType<(typeof api.auth.mfa.totp)['confirm']['$post']>>>

/**
 * Two-factor sign-in with an authenticator app: start (the server makes a secret), prove the app
 * works with one code, then keep the recovery codes (shown once). Turning it off takes the
 * password and a current code.
 */
export function MfaSection() {
  const [enrolment, setEnrolment] = createSignal<Enrolment | null>(null)
  const [codes, setCodes] = createSignal<string[] | null>(null)
  const [turnedOff, setTurnedOff] = createSignal(false)
  const on = () => !!me()?.mfa_enabled
  return (
    <Section
      id="mfa"
      title="Two-factor sign-in"
      intro="A code from an authenticator app (or a recovery code) at every sign-in, on top of the password."
      badge={on() ? <Badge tone="good">On</Badge> : <Badge tone="neutral">Off</Badge>}
    >
      <Switch>
        <Match when={codes()} keyed>
          {(list) => <RecoveryCodes codes={list} onDone={() => setCodes(null)} />}
        </Match>
        <Match when={on()}>
          <TurnOff onDone={() => setTurnedOff(true)} />
        </Match>
        <Match when={enrolment()} keyed>
          {(e) => (
            <Confirm
              enrolment={e}
              onCancel={() => setEnrolment(null)}
              onConfirmed={(c) => {
                setEnrolment(null)
                setCodes(c.recovery_codes)
              }}
            />
          )}
        </Match>
        <Match when={true}>
          <Start onStarted={(e) => (setTurnedOff(false), setEnrolment(e))} turnedOff={turnedOff()} />
        </Match>
      </Switch>
    </Section>
  )
}

function Start(props: { onStarted: (e: Enrolment) => void; turnedOff: boolean }) {
  const start = createSubmit(async () => {
    props.onStarted(await send<Enrolment>('POST', '/api/v1/auth/mfa/totp/enroll'))
    document.getElementById('totp-secret')?.focus()
  })
  return (
    <>
      <Show when={start.error()}>
        <ErrorPanel title="Could not start the setup" error={start.error()} />
      </Show>
      <div class="form-actions start">
        <button type="button" class="button primary" disabled={start.pending()} onClick={() => void start.submit()}>
          Set up two-factor sign-in
        </button>
        <SavedNote when={props.turnedOff} text="Two-factor sign-in is off." />
      </div>
    </>
  )
}

function Confirm(props: { enrolment: Enrolment; onCancel: () => void; onConfirmed: (c: Confirmed) => void }) {
  const [code, setCode] = createSignal('')
  const confirm = createSubmit(async () => {
    const result = await send<Confirmed>('POST', '/api/v1/auth/mfa/totp/confirm', { code: code().trim() })
    // The recovery codes stay on screen (this section keeps them) while the session learns MFA is on.
    props.onConfirmed(result)
    await refreshMe()
    document.getElementById('recovery-codes-title')?.focus()
  })
  return (
    <form class="mfa-enrol" onSubmit={(e) => void confirm.submit(e)} novalidate>
      <ol class="steps">
        <li>
          <p>Add this key to your authenticator app, or open the link on the device that has the app.</p>
          <SecretValue id="totp-secret" label="Secret key" copyLabel="Copy key" value={props.enrolment.secret} />
          <p>
            <a href={props.enrolment.otpauth_uri}>Open in authenticator app</a>
          </p>
        </li>
        <li>
          <p>Enter the 6-digit code the app shows now.</p>
          <Field label="Code from the app" name="code" inputmode="numeric" autocomplete="one-time-code" required value={code()} onInput={(e) => setCode(e.currentTarget.value)} error={confirm.errors()['code']} />
        </li>
      </ol>
      <Show when={confirm.error() && !confirm.errors()['code']}>
        <ErrorPanel title="Could not turn on two-factor sign-in" error={confirm.error()} />
      </Show>
      <div class="form-actions">
        <button type="button" class="button" onClick={() => props.onCancel()}>
          Cancel
        </button>
        <button type="submit" class="button primary" disabled={confirm.pending()}>
          Turn on two-factor sign-in
        </button>
      </div>
    </form>
  )
}

function RecoveryCodes(props: { codes: string[]; onDone: () => void }) {
  return (
    <div class="once-warning" role="region" aria-labelledby="recovery-codes-title">
      <h3 id="recovery-codes-title" tabindex="-1">
        Two-factor sign-in is on — save your recovery codes
      </h3>
      <p>
        Each code signs you in once if you lose your device. They are shown <strong>only now</strong>: store them in your password manager or print them.
      </p>
      <ul class="recovery-codes" aria-label="Recovery codes">
        <For each={props.codes}>{(c) => <li class="mono">{c}</li>}</For>
      </ul>
      <div class="form-actions start">
        <CopyButton text={props.codes.join('\n')} label="Copy recovery codes" />
        <button type="button" class="button primary" onClick={() => props.onDone()}>
          I have saved them
        </button>
      </div>
    </div>
  )
}

function TurnOff(props: { onDone: () => void }) {
  const [password, setPassword] = createSignal('')
  const [code, setCode] = createSignal('')
  const off = createSubmit(async () => {
    await send('POST', '/api/v1/auth/mfa/totp/disable', { password: password(), code: code().trim() })
    props.onDone()
    await refreshMe()
  })
  return (
    <form onSubmit={(e) => void off.submit(e)} novalidate>
      <p class="hint">To turn it off, confirm with your password and a current code (or a recovery code).</p>
      <div class="form-grid">
        <Field label="Password" type="password" autocomplete="current-password" required value={password()} onInput={(e) => setPassword(e.currentTarget.value)} error={off.errors()['password']} />
        <Field label="Code" inputmode="numeric" autocomplete="one-time-code" required value={code()} onInput={(e) => setCode(e.currentTarget.value)} error={off.errors()['code']} />
      </div>
      <Show when={off.error() && !off.errors()['password'] && !off.errors()['code']}>
        <ErrorPanel title="Could not turn off two-factor sign-in" error={off.error()} />
      </Show>
      <div class="form-actions">
        <button type="submit" class="button danger" disabled={off.pending()}>
          Turn off two-factor sign-in
        </button>
      </div>
    </form>
  )
}
