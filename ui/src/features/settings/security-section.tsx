import { createEffect, createResource, createSignal, Show } from 'solid-js'
import { api, send, unwrap, type Ok } from '../../api.ts'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { createSubmit } from '../../components/form.tsx'
import { Loaded } from '../../components/loaded.tsx'
import { me, refreshMe } from '../../session.ts'
import { SavedNote, Section } from './section.tsx'

type Security = Ok<Awaited<ReturnType<typeof api.settings.security.$get>>>

/** Installation-wide sign-in rules (admins). */
export function SecuritySection() {
  const [settings, { refetch }] = createResource(() => unwrap(api.settings.security.$get(), 'GET /settings/security'))
  return (
    <Section id="security" title="Security (all users)" intro="Rules for every account on this installation. Only admins see this section.">
      <Loaded resource={settings} what="security settings" onRetry={() => void refetch()}>
        {(value) => <SecurityForm value={value} />}
      </Loaded>
    </Section>
  )
}

function SecurityForm(props: { value: Security }) {
  const [requireMfa, setRequireMfa] = createSignal(false)
  const [selfRegistration, setSelfRegistration] = createSignal(false)
  const [saved, setSaved] = createSignal(false)
  const apply = (v: Security) => {
    setRequireMfa(v.require_mfa)
    setSelfRegistration(v.self_registration)
  }
  createEffect(() => apply(props.value))
  const form = createSubmit(async () => {
    setSaved(false)
    const stored = await send<Security>('PUT', '/api/v1/settings/security', { require_mfa: requireMfa(), self_registration: selfRegistration() } satisfies Partial<Security>)
    // Show what the server stored, not what was sent.
    apply(stored)
    setSaved(true)
    // Requiring MFA applies to this admin too: the account setup page takes over if they have none.
    if (stored.require_mfa && !me()?.mfa_enabled) await refreshMe()
  })
  const edited = () => setSaved(false)
  return (
    <form onSubmit={(e) => void form.submit(e)} novalidate>
      <div class="toggles">
        <label class="checkbox">
          <input type="checkbox" name="require_mfa" checked={requireMfa()} onChange={(e) => (setRequireMfa(e.currentTarget.checked), edited())} aria-describedby="require-mfa-hint" />
          <span>Require two-factor sign-in for every user</span>
        </label>
        <p id="require-mfa-hint" class="hint toggle-hint">
          Users without it must set it up at their next sign-in before they can do anything else.
          <Show when={requireMfa() && !me()?.mfa_enabled}>
            {' '}
            <strong>You do not use it yet: you will be asked to set it up as soon as you save.</strong>
          </Show>
        </p>
        <label class="checkbox">
          <input type="checkbox" name="self_registration" checked={selfRegistration()} onChange={(e) => (setSelfRegistration(e.currentTarget.checked), edited())} aria-describedby="self-registration-hint" />
          <span>Allow self-registration</span>
        </label>
        <p id="self-registration-hint" class="hint toggle-hint">
          Anyone who can reach the controller may create an account through the API; new accounts are viewers.
        </p>
      </div>
      <Show when={form.error()}>
        <ErrorPanel title="Could not save the security settings" error={form.error()} />
      </Show>
      <div class="form-actions">
        <SavedNote when={saved()} text="Security settings saved." />
        <button type="submit" class="button primary" disabled={form.pending()}>
          Save security settings
        </button>
      </div>
    </form>
  )
}
