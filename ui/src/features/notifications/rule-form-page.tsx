import { useNavigate, useParams } from '@solidjs/router'
import { createMemo, createResource, createSignal, createUniqueId, For, Show } from 'solid-js'
import { createStore } from 'solid-js/store'
import { api, ApiError, fieldErrors, getJson, send, unwrap } from '../../api.ts'
import { ConfirmButton } from '../../components/dialog.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { createSubmit, Field, SaveActions, SelectField, TextAreaField } from '../../components/form.tsx'
import { formatDateTime } from '../../components/format.ts'
import { LoadById } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { can, me } from '../../session.ts'
import { CHANNEL_TYPES, EVENT_IDS, EVENTS, FIELDS } from './events.ts'
import { NotificationsNav } from './notifications-nav.tsx'
import type { ChannelType, DirectoryEntry, JobList, MessageField, NotifyEvent, Rule, RulePreview, RunList, ScheduleList, UserList } from './types.ts'
import '../schedules/schedules.css'
import './notifications.css'

/*
 * A notification rule: events, conditions, who hears (channels, users), critical, a template
 * with a preview rendered by the server for a real run, and escalation. Viewers read it.
 */

interface RuleForm {
  name: string
  enabled: boolean
  critical: boolean
  events: NotifyEvent[]
  job_ids: string[]
  job_tags: string
  target_selector: string
  schedule_ids: string[]
  min_duration_sec: string
  only_on_change: boolean
  channel_ids: string[]
  user_ids: string[]
  subject: string
  body: string
  escalate: boolean
  escalation_after_min: string
  escalation_channel_ids: string[]
  escalation_user_ids: string[]
}

function formOf(r?: Rule): RuleForm {
  const c = r?.conditions ?? {}
  return {
    name: r?.name ?? '',
    enabled: r?.enabled ?? true,
    critical: r?.critical ?? false,
    events: (r?.events as NotifyEvent[] | undefined) ?? ['run.failed'],
    job_ids: c.job_ids ?? [],
    job_tags: (c.job_tags ?? []).join(', '),
    target_selector: c.target_selector ?? '',
    schedule_ids: c.schedule_ids ?? [],
    min_duration_sec: c.min_duration_sec !== undefined ? String(c.min_duration_sec) : '',
    only_on_change: c.only_on_change ?? false,
    channel_ids: r?.channel_ids ?? [],
    user_ids: r?.user_ids ?? [],
    subject: r?.template?.subject ?? '',
    body: r?.template?.body ?? '',
    escalate: !!r?.escalation,
    escalation_after_min: r?.escalation ? String(r.escalation.after_sec / 60) : '30',
    escalation_channel_ids: r?.escalation?.channel_ids ?? [],
    escalation_user_ids: r?.escalation?.user_ids ?? [],
  }
}

export function RuleFormPage() {
  const params = useParams<{ id?: string }>()
  return (
    <section class="notifications-page">
      <LoadById
        id={params.id}
        fetch={(id) => unwrap(api['notification-rules'][':id'].$get({ param: { id } }), 'GET /notification-rules/:id')}
        what="the rule"
        header={
          <>
            <PageHeader title="Notification rule" />
            <NotificationsNav />
          </>
        }
        fallback={
          <>
            <PageHeader title="New rule" subtitle="Which events reach which channels and people." />
            <NotificationsNav />
            <RuleEditor />
          </>
        }
      >
        {(value, update) => <ExistingRule rule={value()} onChanged={update} />}
      </LoadById>
    </section>
  )
}

function ExistingRule(props: { rule: Rule; onChanged: (r: Rule) => void }) {
  const navigate = useNavigate()
  return (
    <>
      <PageHeader
        title={props.rule.name}
        subtitle={`${props.rule.events.join(', ')}${props.rule.enabled ? '' : ' · disabled'}`}
        actions={
          <Show when={can('operator')}>
            <ConfirmButton
              label="Delete"
              title={`Delete rule “${props.rule.name}”?`}
              confirmLabel="Delete rule"
              danger
              errorTitle="Could not delete the rule"
              action={async () => {
                await send('DELETE', `/api/v1/notification-rules/${props.rule.id}`)
                navigate('/notifications/rules')
              }}
            >
              <p>Events it matched stop being sent. Messages already sent stay in the history.</p>
            </ConfirmButton>
          </Show>
        }
      />
      <NotificationsNav />
      <RuleEditor existing={props.rule} onSaved={props.onChanged} />
    </>
  )
}

/** Checkboxes over a list of things with ids, in a labelled group. */
function CheckList<T>(props: { legend: string; items: T[]; id: (t: T) => string; label: (t: T) => string; selected: string[]; onChange: (ids: string[]) => void; error?: string | undefined; empty?: string }) {
  return (
    <fieldset class="check-list" classList={{ invalid: !!props.error }}>
      <legend>{props.legend}</legend>
      <Show when={props.items.length > 0} fallback={<p class="hint">{props.empty ?? 'None to choose from.'}</p>}>
        <div class="check-grid">
          <For each={props.items}>
            {(t) => (
              <label class="check">
                <input
                  type="checkbox"
                  checked={props.selected.includes(props.id(t))}
                  onChange={(e) => props.onChange(e.currentTarget.checked ? [...props.selected, props.id(t)] : props.selected.filter((x) => x !== props.id(t)))}
                />
                <span>{props.label(t)}</span>
              </label>
            )}
          </For>
        </div>
      </Show>
      <Show when={props.error}>{(m) => <p class="field-error">{m()}</p>}</Show>
    </fieldset>
  )
}

/** A multiple choice in a list box (jobs, schedules: there may be many). */
function MultiSelect(props: { label: string; options: { id: string; name: string }[]; selected: string[]; onChange: (ids: string[]) => void; hint: string; error?: string | undefined }) {
  const id = createUniqueId()
  return (
    <div class="field" classList={{ invalid: !!props.error }}>
      <label for={id}>{props.label}</label>
      <select id={id} multiple size={Math.min(6, Math.max(3, props.options.length))} aria-describedby={`${id}-note`} onChange={(e) => props.onChange(Array.from(e.currentTarget.selectedOptions).map((o) => o.value))}>
        <For each={props.options}>
          {(o) => (
            <option value={o.id} selected={props.selected.includes(o.id)}>
              {o.name}
            </option>
          )}
        </For>
      </select>
      <p id={`${id}-note`} class={props.error ? 'field-error' : 'hint'}>
        {props.error ?? props.hint}
      </p>
    </div>
  )
}

/** Users: admins pick from the list; others (who cannot list users) add themselves or paste ids. */
function UserPicker(props: { legend: string; users: UserList['items'] | undefined; selected: string[]; onChange: (ids: string[]) => void; error?: string | undefined }) {
  const mine = () => me()?.id
  return (
    <Show
      when={props.users}
      fallback={
        <div class="user-ids">
          <TextAreaField
            label={props.legend}
            rows={2}
            class="mono"
            value={props.selected.join('\n')}
            onInput={(e) => props.onChange(e.currentTarget.value.split(/[\s,]+/).filter(Boolean))}
            error={props.error}
            hint="User ids, one per line. Each user's own preferences apply."
          />
          <Show when={mine() && !props.selected.includes(mine()!)}>
            <button type="button" class="button small" onClick={() => props.onChange([...props.selected, mine()!])}>
              Add me
            </button>
          </Show>
        </div>
      }
    >
      {(users) => <CheckList legend={props.legend} items={users()} id={(u) => u.id} label={(u) => `${u.display_name ?? u.username} (${u.username})`} selected={props.selected} onChange={props.onChange} error={props.error} />}
    </Show>
  )
}

const PREVIEW_EVENTS = ['run.failed', 'run.succeeded', 'run.finished', 'run.timed_out'] as const

function RuleEditor(props: { existing?: Rule; onSaved?: (r: Rule) => void }) {
  const navigate = useNavigate()
  const readOnly = () => !can('operator')
  const [form, setForm] = createStore<RuleForm>(formOf(props.existing))
  const [saved, setSaved] = createSignal(false)
  const [directory] = createResource(() => unwrap(api['notification-channels'].directory.$get(), 'GET /notification-channels/directory'))
  const [jobs] = createResource(() => getJson<JobList>('/api/v1/jobs?limit=500'))
  const [schedules] = createResource(() => getJson<ScheduleList>('/api/v1/schedules?limit=500'))
  const [users] = createResource(() => (can('admin') ? getJson<UserList>('/api/v1/users?limit=500') : Promise.resolve(undefined)))
  const channels = (): DirectoryEntry[] => (directory.error ? [] : (directory.latest?.items ?? []))
  const userList = () => (users.error ? undefined : users.latest)

  const bodyOf = () => {
    const conditions: Record<string, unknown> = {}
    if (form.job_ids.length) conditions.job_ids = form.job_ids
    const tags = form.job_tags.split(',').map((t) => t.trim()).filter(Boolean)
    if (tags.length) conditions.job_tags = tags
    if (form.target_selector.trim()) conditions.target_selector = form.target_selector.trim()
    if (form.schedule_ids.length) conditions.schedule_ids = form.schedule_ids
    if (form.min_duration_sec.trim()) conditions.min_duration_sec = Number.isFinite(Number(form.min_duration_sec)) ? Number(form.min_duration_sec) : form.min_duration_sec
    if (form.only_on_change) conditions.only_on_change = true
    return {
      name: form.name,
      enabled: form.enabled,
      critical: form.critical,
      events: form.events,
      conditions,
      channel_ids: form.channel_ids,
      user_ids: form.user_ids,
      template: template(),
      escalation: form.escalate
        ? {
            after_sec: Number.isFinite(Number(form.escalation_after_min)) ? Math.round(Number(form.escalation_after_min) * 60) : form.escalation_after_min,
            channel_ids: form.escalation_channel_ids,
            user_ids: form.escalation_user_ids,
          }
        : null,
    }
  }
  const template = () => (form.subject.trim() || form.body.trim() ? { ...(form.subject.trim() ? { subject: form.subject } : {}), ...(form.body.trim() ? { body: form.body } : {}) } : null)

  const { submit, pending, error, errors } = createSubmit(async () => {
    setSaved(false)
    const result = props.existing ? await send<Rule>('PUT', `/api/v1/notification-rules/${props.existing.id}`, bodyOf()) : await send<Rule>('POST', '/api/v1/notification-rules', bodyOf())
    if (props.existing) {
      setSaved(true)
      props.onSaved?.(result)
    } else navigate(`/notifications/rules/${result.id}`)
    return result
  })
  const e = (p: string) => errors()[p] ?? Object.entries(errors()).find(([k]) => k.startsWith(`${p}[`))?.[1]

  return (
    <form class="rule-form" onSubmit={(ev) => void submit(ev)} novalidate aria-label={props.existing ? 'Edit rule' : 'New rule'}>
      <fieldset class="card form-section" disabled={readOnly()}>
        <legend class="section-title">Rule</legend>
        <Field label="Name" required value={form.name} onInput={(ev) => setForm('name', ev.currentTarget.value)} error={e('name')} />
        <label class="check">
          <input type="checkbox" checked={form.enabled} onChange={(ev) => setForm('enabled', ev.currentTarget.checked)} />
          <span>Enabled</span>
        </label>
        <label class="check">
          <input type="checkbox" checked={form.critical} onChange={(ev) => setForm('critical', ev.currentTarget.checked)} aria-describedby="critical-note" />
          <span>Critical</span>
        </label>
        <p class="hint" id="critical-note">
          Critical messages reach people during their quiet hours and are never held for a digest.
        </p>
        <CheckList legend="Events" items={EVENT_IDS} id={(x) => x} label={(x) => `${EVENTS[x]} (${x})`} selected={form.events} onChange={(ids) => setForm('events', ids as NotifyEvent[])} error={e('events')} />
      </fieldset>

      <fieldset class="card form-section" disabled={readOnly()}>
        <legend class="section-title">Conditions</legend>
        <p class="hint">All that are set must hold. Empty: every event of the kinds chosen.</p>
        <div class="form-grid">
          <MultiSelect label="Only these jobs" options={(jobs.error ? [] : (jobs.latest?.items ?? [])).map((j) => ({ id: String(j.id), name: String(j.name) }))} selected={form.job_ids} onChange={(ids) => setForm('job_ids', ids)} hint="Ctrl/⌘-click to pick several; none: any job." error={e('conditions.job_ids')} />
          <MultiSelect label="Only these schedules" options={(schedules.error ? [] : (schedules.latest?.items ?? [])).map((s) => ({ id: s.id, name: s.name }))} selected={form.schedule_ids} onChange={(ids) => setForm('schedule_ids', ids)} hint="For runs a schedule started and missed fires." error={e('conditions.schedule_ids')} />
          <Field label="Job tags" value={form.job_tags} onInput={(ev) => setForm('job_tags', ev.currentTarget.value)} error={e('conditions.job_tags')} hint="Comma-separated; a job with any of them." />
          <Field label="Target selector" class="mono" value={form.target_selector} onInput={(ev) => setForm('target_selector', ev.currentTarget.value)} error={e('conditions.target_selector')} hint="Runs touching a matching target, e.g. tag:env=prod." />
          <Field label="Minimum duration (seconds)" type="number" min="0" value={form.min_duration_sec} onInput={(ev) => setForm('min_duration_sec', ev.currentTarget.value)} error={e('conditions.min_duration_sec')} />
        </div>
        <label class="check">
          <input type="checkbox" checked={form.only_on_change} onChange={(ev) => setForm('only_on_change', ev.currentTarget.checked)} />
          <span>Only on change (the first failure and the recovery, not the repeats)</span>
        </label>
      </fieldset>

      <fieldset class="card form-section" disabled={readOnly()}>
        <legend class="section-title">Recipients</legend>
        <CheckList legend="Channels" items={channels()} id={(c) => c.id} label={(c) => `${c.name} (${CHANNEL_TYPES[c.type as ChannelType]})`} selected={form.channel_ids} onChange={(ids) => setForm('channel_ids', ids)} error={e('channel_ids')} empty={can('admin') ? 'No channels yet: add one under Channels.' : 'No channels yet: ask an admin to add one.'} />
        <UserPicker legend="Users" users={userList()?.items} selected={form.user_ids} onChange={(ids) => setForm('user_ids', ids)} error={e('user_ids')} />
      </fieldset>

      <TemplateSection form={form} setSubject={(v) => setForm('subject', v)} setBody={(v) => setForm('body', v)} template={template} errors={errors()} readOnly={readOnly()} />

      <fieldset class="card form-section" disabled={readOnly()}>
        <legend class="section-title">Escalation</legend>
        <label class="check">
          <input type="checkbox" checked={form.escalate} onChange={(ev) => setForm('escalate', ev.currentTarget.checked)} />
          <span>Escalate a failure no success follows</span>
        </label>
        <Show when={e('escalation')}>{(m) => <p class="field-error">{m()}</p>}</Show>
        <Show when={form.escalate}>
          <Field label="Escalate after (minutes)" type="number" min="1" value={form.escalation_after_min} onInput={(ev) => setForm('escalation_after_min', ev.currentTarget.value)} error={e('escalation.after_sec')} hint="When the job has not succeeded since the failure (1 minute to 7 days)." />
          <CheckList legend="Escalate to channels" items={channels()} id={(c) => c.id} label={(c) => c.name} selected={form.escalation_channel_ids} onChange={(ids) => setForm('escalation_channel_ids', ids)} error={e('escalation.channel_ids')} />
          <UserPicker legend="Escalate to users" users={userList()?.items} selected={form.escalation_user_ids} onChange={(ids) => setForm('escalation_user_ids', ids)} error={e('escalation.user_ids')} />
        </Show>
      </fieldset>

      <Show when={can('operator')}>
        <SaveActions label="Save rule" pending={pending()} saved={saved()} error={error()} errorTitle="Could not save the rule" back={{ href: '/notifications/rules', label: props.existing ? 'Back' : 'Cancel' }} />
      </Show>
    </form>
  )
}

function TemplateSection(props: {
  form: RuleForm
  setSubject: (v: string) => void
  setBody: (v: string) => void
  template: () => { subject?: string; body?: string } | null
  errors: Record<string, string>
  readOnly: boolean
}) {
  const [runs, { refetch: refetchRuns }] = createResource(() => getJson<RunList>('/api/v1/runs?limit=25'))
  const [runId, setRunId] = createSignal('')
  const [event, setEvent] = createSignal('')
  const [preview, setPreview] = createSignal<RulePreview | null>(null)
  const [previewError, setPreviewError] = createSignal<unknown>(null)
  const [rendering, setRendering] = createSignal(false)
  const runOptions = createMemo(() => (runs.error ? [] : (runs.latest?.items ?? [])))
  const chosenRun = () => runId() || runOptions()[0]?.id || ''
  const previewFieldErrors = () => fieldErrors(previewError())

  const render = async () => {
    setRendering(true)
    setPreviewError(null)
    try {
      setPreview(await send<RulePreview>('POST', '/api/v1/notification-rules/preview', { run_id: chosenRun(), ...(event() ? { event: event() } : {}), template: props.template() }))
    } catch (err) {
      setPreview(null)
      setPreviewError(err)
    } finally {
      setRendering(false)
    }
  }
  const subjectError = () => props.errors['template.subject'] ?? previewFieldErrors()['template.subject']
  const bodyError = () => props.errors['template.body'] ?? previewFieldErrors()['template.body']

  return (
    <section class="card form-section template-section" aria-labelledby="template-title">
      <h2 id="template-title" class="section-title">
        Message template
      </h2>
      <div class="template-layout">
        <fieldset class="template-editor" disabled={props.readOnly}>
          <legend class="visually-hidden">Template</legend>
          <Field label="Subject template" class="mono" value={props.form.subject} placeholder="{{ escalation }}{{ title }}" onInput={(e) => props.setSubject(e.currentTarget.value)} error={subjectError()} hint="Empty: the default subject." />
          <TextAreaField label="Body template" rows={9} value={props.form.body} placeholder={'Job: {{ job_name }}\nStatus: {{ status }}\n…'} onInput={(e) => props.setBody(e.currentTarget.value)} error={bodyError()} hint={'Empty: the default body. Filters as in jobs: {{ failed_targets | default "none" }}.'} />
          <details class="fields-help">
            <summary>Fields a template can use</summary>
            <dl class="facts">
              <For each={Object.entries(FIELDS) as [MessageField, string][]}>
                {([name, what]) => (
                  <>
                    <dt>
                      <code>{`{{ ${name} }}`}</code>
                    </dt>
                    <dd>{what}</dd>
                  </>
                )}
              </For>
            </dl>
          </details>
        </fieldset>
        <div class="template-preview">
          <h3 class="subsection">Preview for a real run</h3>
          <Show when={!runs.error} fallback={<ErrorPanel title="Could not list runs" error={runs.error} onRetry={() => void refetchRuns()} />}>
            <Show when={runOptions().length > 0} fallback={<p class="hint">{runs.loading ? 'Loading runs…' : 'No runs yet: a preview needs a run to render.'}</p>}>
              <SelectField label="Run to preview with" onChange={(e) => setRunId(e.currentTarget.value)}>
                <For each={runOptions()}>
                  {(r) => (
                    <option value={r.id} selected={chosenRun() === r.id}>
                      {`${r.job_name} · ${r.status} · ${formatDateTime(r.created_at)}`}
                    </option>
                  )}
                </For>
              </SelectField>
              <SelectField label="As the event" onChange={(e) => setEvent(e.currentTarget.value)}>
                <option value="" selected={event() === ''}>
                  The run’s own (by its status)
                </option>
                <For each={PREVIEW_EVENTS}>
                  {(ev) => (
                    <option value={ev} selected={event() === ev}>
                      {ev}
                    </option>
                  )}
                </For>
              </SelectField>
              <button type="button" class="button" disabled={rendering() || !chosenRun()} onClick={() => void render()}>
                {rendering() ? 'Rendering…' : 'Render preview'}
              </button>
            </Show>
          </Show>
          <Show when={previewError() && !(previewError() instanceof ApiError && (previewError() as ApiError).status === 400 && Object.keys(previewFieldErrors()).length)}>
            <ErrorPanel title="Could not render the preview" error={previewError()} />
          </Show>
          <Show when={preview()}>
            {(p) => (
              <div class="preview-output" role="region" aria-label="Rendered preview">
                <p class="preview-label">Subject</p>
                <p class="preview-subject" data-testid="preview-subject">
                  {p().subject}
                </p>
                <p class="preview-label">Text</p>
                <pre class="answer preview-text" data-testid="preview-text">
                  {p().text}
                </pre>
                <For each={Object.entries(p().channels)}>
                  {([type, payload]) => (
                    <details class="payload">
                      <summary>As {CHANNEL_TYPES[type as ChannelType] ?? type} sends it</summary>
                      <pre class="answer">{JSON.stringify(payload, null, 2)}</pre>
                    </details>
                  )}
                </For>
              </div>
            )}
          </Show>
        </div>
      </div>
    </section>
  )
}
