import { createResource, createSignal, For, Show } from 'solid-js'
import { createStore } from 'solid-js/store'
import { api, send, unwrap } from '../../api.ts'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { createSubmit, Field, SaveActions } from '../../components/form.tsx'
import { formatDateTime } from '../../components/format.ts'
import { Loaded } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { me } from '../../session.ts'
import { browserZone } from '../schedules/time.ts'
import { ZoneField } from '../schedules/zone-field.tsx'
import { CHANNEL_TYPES, EVENT_IDS, EVENTS } from './events.ts'
import { NotificationsNav } from './notifications-nav.tsx'
import type { ChannelType, NotifyEvent, Preferences } from './types.ts'
import '../schedules/schedules.css'
import './notifications.css'

/*
 * What the signed-in user accepts from rules that name them: channels, events, quiet hours in
 * their own zone (messages wait for the end; critical ones do not), and digest batching.
 */

export function PreferencesPage() {
  const userId = () => me()?.id
  const [prefs, { refetch, mutate }] = createResource(userId, (id) => unwrap(api.notification.preferences[':user_id'].$get({ param: { user_id: id } }), 'GET /notification/preferences/:user_id'))
  return (
    <section class="notifications-page">
      <PageHeader title="My notification preferences" subtitle="How rules that name you reach you." />
      <NotificationsNav />
      <Loaded resource={prefs} what="your preferences" onRetry={() => void refetch()} keyed={false}>
        {(p) => <PreferencesForm prefs={p()} onSaved={(next) => mutate(next)} />}
      </Loaded>
    </section>
  )
}

interface PrefForm {
  all_channels: boolean
  channel_ids: string[]
  all_events: boolean
  events: NotifyEvent[]
  quiet: boolean
  quiet_start: string
  quiet_end: string
  timezone: string
  digest: boolean
  digest_minutes: string
}

function PreferencesForm(props: { prefs: Preferences; onSaved: (p: Preferences) => void }) {
  const p = props.prefs
  const [form, setForm] = createStore<PrefForm>({
    all_channels: p.channel_ids === null,
    channel_ids: p.channel_ids ?? [],
    all_events: p.events === null,
    events: (p.events as NotifyEvent[] | null) ?? [],
    quiet: p.quiet_hours !== null,
    quiet_start: p.quiet_hours?.start ?? '22:00',
    quiet_end: p.quiet_hours?.end ?? '07:00',
    timezone: p.updated_at ? p.timezone : browserZone(),
    digest: p.digest_minutes !== null,
    digest_minutes: String(p.digest_minutes ?? 60),
  })
  const [saved, setSaved] = createSignal(false)
  const [directory, { refetch }] = createResource(() => unwrap(api['notification-channels'].directory.$get(), 'GET /notification-channels/directory'))

  const { submit, pending, error, errors } = createSubmit(async () => {
    setSaved(false)
    const body = {
      channel_ids: form.all_channels ? null : form.channel_ids,
      events: form.all_events ? null : form.events,
      quiet_hours: form.quiet ? { start: form.quiet_start, end: form.quiet_end } : null,
      timezone: form.timezone,
      digest_minutes: form.digest ? (Number.isFinite(Number(form.digest_minutes)) && form.digest_minutes.trim() ? Number(form.digest_minutes) : form.digest_minutes) : null,
    }
    const next = await send<Preferences>('POST', `/api/v1/notification/preferences/${props.prefs.user_id}`, body)
    setSaved(true)
    props.onSaved(next)
    return next
  })
  const e = (path: string) => errors()[path] ?? Object.entries(errors()).find(([k]) => k.startsWith(`${path}[`) || k.startsWith(`${path}.`))?.[1]

  return (
    <form class="preferences-form" onSubmit={(ev) => void submit(ev)} novalidate aria-label="Notification preferences">
      <p class="hint">
        <Show when={props.prefs.updated_at} fallback="You have not changed these yet: you get every event, at once, by email.">
          Last changed {formatDateTime(props.prefs.updated_at)}
          {props.prefs.updated_by ? ` by ${props.prefs.updated_by}` : ''}.
        </Show>
      </p>
      <fieldset class="card form-section">
        <legend class="section-title">Channels</legend>
        <fieldset class="radio-row">
          <legend>Reach me on</legend>
          <label class="check">
            <input type="radio" name="channels" checked={form.all_channels} onChange={() => setForm('all_channels', true)} />
            <span>Email to my address (any channel a rule uses)</span>
          </label>
          <label class="check">
            <input type="radio" name="channels" checked={!form.all_channels} onChange={() => setForm('all_channels', false)} />
            <span>Only these channels</span>
          </label>
        </fieldset>
        <Show when={!form.all_channels}>
          <Show when={!directory.error} fallback={<ErrorPanel title="Could not list channels" error={directory.error} onRetry={() => void refetch()} />}>
            <fieldset class="check-list">
              <legend>Accepted channels</legend>
              <div class="check-grid">
                <For each={directory.latest?.items ?? []} fallback={<p class="hint">No channels exist yet.</p>}>
                  {(c) => (
                    <label class="check">
                      <input type="checkbox" checked={form.channel_ids.includes(c.id)} onChange={(ev) => setForm('channel_ids', ev.currentTarget.checked ? [...form.channel_ids, c.id] : form.channel_ids.filter((x) => x !== c.id))} />
                      <span>
                        {c.name} ({CHANNEL_TYPES[c.type as ChannelType]})
                      </span>
                    </label>
                  )}
                </For>
              </div>
              <Show when={e('channel_ids')}>{(m) => <p class="field-error">{m()}</p>}</Show>
            </fieldset>
          </Show>
        </Show>
      </fieldset>
      <fieldset class="card form-section">
        <legend class="section-title">Events</legend>
        <fieldset class="radio-row">
          <legend>Tell me about</legend>
          <label class="check">
            <input type="radio" name="events" checked={form.all_events} onChange={() => setForm('all_events', true)} />
            <span>Every event a rule sends me</span>
          </label>
          <label class="check">
            <input type="radio" name="events" checked={!form.all_events} onChange={() => setForm('all_events', false)} />
            <span>Only these events</span>
          </label>
        </fieldset>
        <Show when={!form.all_events}>
          <fieldset class="check-list">
            <legend>Accepted events</legend>
            <div class="check-grid">
              <For each={EVENT_IDS}>
                {(id) => (
                  <label class="check">
                    <input type="checkbox" checked={form.events.includes(id)} onChange={(ev) => setForm('events', ev.currentTarget.checked ? [...form.events, id] : form.events.filter((x) => x !== id))} />
                    <span>{EVENTS[id]}</span>
                  </label>
                )}
              </For>
            </div>
            <Show when={e('events')}>{(m) => <p class="field-error">{m()}</p>}</Show>
          </fieldset>
        </Show>
      </fieldset>
      <fieldset class="card form-section">
        <legend class="section-title">Quiet hours and digests</legend>
        <label class="check">
          <input type="checkbox" checked={form.quiet} onChange={(ev) => setForm('quiet', ev.currentTarget.checked)} />
          <span>Quiet hours</span>
        </label>
        <p class="hint">Messages wait until the quiet hours end (critical ones do not). The hours may cross midnight.</p>
        <Show when={form.quiet}>
          <div class="form-grid">
            <Field label="Quiet from" type="time" value={form.quiet_start} onInput={(ev) => setForm('quiet_start', ev.currentTarget.value)} error={e('quiet_hours.start')} />
            <Field label="Quiet until" type="time" value={form.quiet_end} onInput={(ev) => setForm('quiet_end', ev.currentTarget.value)} error={e('quiet_hours.end') ?? e('quiet_hours')} />
          </div>
        </Show>
        <ZoneField label="My time zone" value={form.timezone} onZone={(z) => setForm('timezone', z)} error={e('timezone')} />
        <label class="check">
          <input type="checkbox" checked={form.digest} onChange={(ev) => setForm('digest', ev.currentTarget.checked)} />
          <span>Batch messages into a digest</span>
        </label>
        <Show when={form.digest}>
          <Field label="Send a digest every (minutes)" type="number" min="1" max="1440" value={form.digest_minutes} onInput={(ev) => setForm('digest_minutes', ev.currentTarget.value)} error={e('digest_minutes')} hint="Once the oldest held message waited this long, one message per channel lists them all." />
        </Show>
      </fieldset>
      <SaveActions label="Save preferences" pending={pending()} saved={saved()} error={error()} errorTitle="Could not save your preferences" />
    </form>
  )
}
