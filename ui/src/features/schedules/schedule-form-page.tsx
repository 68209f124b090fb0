import { useNavigate, useParams } from '@solidjs/router'
import { batch, createEffect, createMemo, createResource, createSignal, For, on, Show } from 'solid-js'
import { createStore } from 'solid-js/store'
import type { ParameterDef } from '../../../../controller/src/jobs/definition.ts'
import type { ConcurrencyPolicy, MisfirePolicy } from '../../../../controller/src/scheduler/scheduler.sql.ts'
import { api, getJson, send, unwrap } from '../../api.ts'
import { createAction } from '../../components/action.ts'
import { Badge } from '../../components/badge.tsx'
import { ConfirmButton } from '../../components/dialog.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { createSubmit, Field, SaveActions, SelectField, TextAreaField } from '../../components/form.tsx'
import { relativeTime } from '../../components/format.ts'
import { LoadById } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { useNow } from '../../components/time.tsx'
import { can } from '../../session.ts'
import { CronBuilder } from './cron-builder.tsx'
import { FireHistory } from './fire-history.tsx'
import { NextFires } from './next-fires.tsx'
import { ParamsEditor, parametersToSend, SECRET_MASK } from './params-editor.tsx'
import { SchedulesNav } from './schedules-nav.tsx'
import { browserZone, formatInZone, instantToWall, wallToInstant } from './time.ts'
import type { JobList, Schedule } from './types.ts'
import { ZoneField } from './zone-field.tsx'
import './schedules.css'

/*
 * A schedule: create (/schedules/new) or view and edit (/schedules/:id) — the job and its
 * parameters, the cron builder and zone with the next fires as the server computes them, the
 * start/end window, misfire, concurrency and retry policies; on an existing one also
 * enable/disable, delete and the fire history. Viewers see it all read-only.
 */

const MISFIRE: Record<MisfirePolicy, string> = {
  run_once: 'Run once for all missed fires',
  run_all: 'Run every missed fire',
  skip: 'Skip missed fires',
}
const CONCURRENCY: Record<ConcurrencyPolicy, string> = {
  allow: 'Allow overlapping runs',
  skip: 'Skip a fire while runs are active',
  queue: 'Queue a fire until a run ends',
}

interface FormState {
  name: string
  description: string
  job_id: string
  targets: string
  cron: string
  timezone: string
  enabled: boolean
  start_at: string
  end_at: string
  misfire_policy: MisfirePolicy
  misfire_max_lateness_sec: string
  concurrency_policy: ConcurrencyPolicy
  max_concurrent_runs: string
  retry_count: string
  retry_delay_sec: string
  retry_backoff: string
  parameters: Record<string, string>
}

const blank = (): FormState => ({
  name: '',
  description: '',
  job_id: '',
  targets: '',
  cron: '0 2 * * *',
  timezone: browserZone(),
  enabled: true,
  start_at: '',
  end_at: '',
  misfire_policy: 'run_once',
  misfire_max_lateness_sec: '3600',
  concurrency_policy: 'allow',
  max_concurrent_runs: '1',
  retry_count: '0',
  retry_delay_sec: '60',
  retry_backoff: '2',
  parameters: {},
})

function fromSchedule(s: Schedule): FormState {
  return {
    name: s.name,
    description: s.description ?? '',
    job_id: s.job_id,
    targets: s.targets ?? '',
    cron: s.cron,
    timezone: s.timezone,
    enabled: s.enabled,
    start_at: s.start_at ? instantToWall(s.start_at, s.timezone) : '',
    end_at: s.end_at ? instantToWall(s.end_at, s.timezone) : '',
    misfire_policy: s.misfire_policy,
    misfire_max_lateness_sec: String(s.misfire_max_lateness_sec),
    concurrency_policy: s.concurrency_policy,
    max_concurrent_runs: String(s.max_concurrent_runs),
    retry_count: String(s.retry.count),
    retry_delay_sec: String(s.retry.delay_sec),
    retry_backoff: String(s.retry.backoff),
    parameters: Object.fromEntries(Object.entries(s.parameters).map(([k, v]) => [k, v === null || v === undefined ? '' : String(v)])),
  }
}

/** A number field: its number, or the text as typed so the server names what is wrong with it. */
const num = (text: string): number | string => (text.trim() !== '' && Number.isFinite(Number(text)) ? Number(text) : text)

export function ScheduleFormPage() {
  const params = useParams<{ id?: string }>()
  return (
    <section class="schedule-page">
      <LoadById
        id={params.id}
        fetch={(id) => unwrap(api.schedules[':id'].$get({ param: { id } }), 'GET /schedules/:id')}
        what="the schedule"
        header={
          <>
            <PageHeader title="Schedule" />
            <SchedulesNav />
          </>
        }
        fallback={
          <>
            <PageHeader title="New schedule" subtitle="Run a job on a cron expression in a time zone." />
            <SchedulesNav />
            <ScheduleForm onSaved={() => {}} />
          </>
        }
      >
        {(value, update) => <ExistingSchedule schedule={value()} onChanged={update} />}
      </LoadById>
    </section>
  )
}

function ExistingSchedule(props: { schedule: Schedule; onChanged: (s: Schedule) => void }) {
  const navigate = useNavigate()
  const now = useNow()
  const s = () => props.schedule
  const setEnabled = createAction(async (enabled: boolean) => props.onChanged(await send<Schedule>('PUT', `/api/v1/schedules/${s().id}`, { enabled })))

  return (
    <>
      <PageHeader
        title={s().name}
        subtitle={`${s().job_name ?? 'Deleted job'} · ${s().cron} · ${s().timezone}`}
        actions={
          <Show when={can('operator')}>
            <button type="button" class="button" disabled={setEnabled.pending()} onClick={() => void setEnabled.run(!s().enabled)}>
              {s().enabled ? 'Disable' : 'Enable'}
            </button>
            <ConfirmButton
              label="Delete"
              title={`Delete schedule “${s().name}”?`}
              confirmLabel="Delete schedule"
              danger
              errorTitle="Could not delete the schedule"
              action={async () => {
                await send('DELETE', `/api/v1/schedules/${s().id}`)
                navigate('/schedules')
              }}
            >
              <p>It stops firing at once. Its fire history stays readable in the audit log and its runs.</p>
            </ConfirmButton>
          </Show>
        }
      />
      <SchedulesNav />
      <div class="schedule-facts card">
        <dl class="facts">
          <dt>Status</dt>
          <dd>
            <Badge tone={s().enabled ? 'good' : 'neutral'}>{s().enabled ? 'Enabled' : 'Disabled'}</Badge>
          </dd>
          <dt>Next fire</dt>
          <dd data-testid="next-fire">{s().next_fire_at ? `${formatInZone(s().next_fire_at, s().timezone)} (${relativeTime(s().next_fire_at, now())})` : s().enabled ? 'none left' : '— (disabled)'}</dd>
          <dt>Last fire</dt>
          <dd>{s().last_fire_at ? formatInZone(s().last_fire_at, s().timezone) : 'never'}</dd>
          <dt>Changed</dt>
          <dd>
            {formatInZone(s().updated_at, s().timezone)}
            {s().updated_by ? ` by ${s().updated_by}` : ''}
          </dd>
        </dl>
      </div>
      <Show when={setEnabled.error()}>{(err) => <ErrorPanel title="Could not change the schedule" error={err()} />}</Show>
      <ScheduleForm existing={s()} onSaved={(saved) => props.onChanged(saved)} />
      <FireHistory scheduleId={s().id} timezone={s().timezone} />
    </>
  )
}

function ScheduleForm(props: { existing?: Schedule; onSaved: (s: Schedule) => void }) {
  const navigate = useNavigate()
  const readOnly = () => !can('operator')
  const [form, setForm] = createStore<FormState>(props.existing ? fromSchedule(props.existing) : blank())
  const [previewProblems, setPreviewProblems] = createSignal<Record<string, string>>({})
  const [saved, setSaved] = createSignal(false)
  const storedSecrets = () => new Set(Object.entries(props.existing?.parameters ?? {}).filter(([, v]) => v === SECRET_MASK).map(([k]) => k))

  // The jobs to pick from (the first 500 by name; a search narrows them when there are more).
  const [jobQuery, setJobQuery] = createSignal('')
  const [jobs] = createResource(jobQuery, (q) => getJson<JobList>(`/api/v1/jobs?limit=500${q ? `&q=${encodeURIComponent(q)}` : ''}`), { initialValue: undefined })
  const [job] = createResource(
    () => form.job_id || false,
    (jobId) => unwrap(api.jobs[':id'].$get({ param: { id: jobId } }), 'GET /jobs/:id'),
  )
  const defs = createMemo(() => (job.error ? [] : ((job.latest?.parameters as ParameterDef[] | undefined) ?? [])))
  const jobOptions = createMemo(() => {
    const list = jobs.error ? [] : (jobs.latest?.items ?? [])
    const items = list.map((j) => ({ id: String(j.id), name: String(j.name) }))
    // The schedule's own job stays choosable even when a search hides it.
    if (props.existing && !items.some((j) => j.id === props.existing!.job_id)) items.unshift({ id: props.existing.job_id, name: props.existing.job_name ?? props.existing.job_id })
    return items
  })

  // Changing the zone keeps the start/end wall times (they are read in the zone).
  const instant = (wall: string) => (wall ? wallToInstant(wall, form.timezone)?.toISOString() : undefined)

  const { submit, pending, error, errors } = createSubmit(async () => {
    setSaved(false)
    const body = {
      name: form.name,
      description: form.description.trim() || null,
      job_id: form.job_id,
      parameters: parametersToSend(defs(), form.parameters, storedSecrets()),
      targets: form.targets.trim() || null,
      cron: form.cron,
      timezone: form.timezone,
      enabled: form.enabled,
      start_at: form.start_at ? (instant(form.start_at) ?? form.start_at) : null,
      end_at: form.end_at ? (instant(form.end_at) ?? form.end_at) : null,
      misfire_policy: form.misfire_policy,
      misfire_max_lateness_sec: num(form.misfire_max_lateness_sec),
      concurrency_policy: form.concurrency_policy,
      max_concurrent_runs: num(form.max_concurrent_runs),
      retry: { count: num(form.retry_count), delay_sec: num(form.retry_delay_sec), backoff: num(form.retry_backoff) },
    }
    const result = props.existing ? await send<Schedule>('PUT', `/api/v1/schedules/${props.existing.id}`, body) : await send<Schedule>('POST', '/api/v1/schedules', body)
    if (props.existing) {
      setSaved(true)
      props.onSaved(result)
    } else navigate(`/schedules/${result.id}`)
    return result
  })
  // Cron and zone are checked live by the preview: once edited after a save, its verdict replaces the save's.
  const [editedSinceSave, setEditedSinceSave] = createSignal(new Set<string>())
  createEffect(on(() => form.cron, () => setEditedSinceSave(new Set([...editedSinceSave(), 'cron'])), { defer: true }))
  createEffect(on(() => form.timezone, () => setEditedSinceSave(new Set([...editedSinceSave(), 'timezone'])), { defer: true }))
  createEffect(on(error, () => setEditedSinceSave(new Set<string>())))
  const fieldError = (path: string) => (editedSinceSave().has(path) ? previewProblems()[path] : (errors()[path] ?? previewProblems()[path]))
  createEffect(on(() => [form.cron, form.timezone], () => setSaved(false), { defer: true }))
  // Enabled or disabled from the page header: the form follows.
  createEffect(on(() => props.existing?.enabled, (enabled) => enabled !== undefined && setForm('enabled', enabled), { defer: true }))

  return (
    <form class="schedule-form" onSubmit={(e) => void submit(e)} novalidate aria-label={props.existing ? 'Edit schedule' : 'New schedule'}>
      <div class="schedule-layout">
        <div class="schedule-main">
          <fieldset class="card form-section" disabled={readOnly()}>
            <legend class="section-title">Job</legend>
            <div class="form-grid">
              <Field label="Name" name="name" required value={form.name} onInput={(e) => setForm('name', e.currentTarget.value)} error={fieldError('name')} />
              <div class="job-picker">
                <SelectField
                  label="Job"
                  name="job_id"
                  required
                  value={form.job_id}
                  onChange={(e) => batch(() => (setForm('job_id', e.currentTarget.value), setForm('parameters', {})))}
                  error={fieldError('job_id') ?? (jobs.error ? `Could not list jobs: ${(jobs.error as Error).message}` : undefined)}
                  hint={!jobs.loading && !jobs.error && jobOptions().length === 0 ? 'No jobs yet: create a job first (Jobs).' : undefined}
                >
                  <option value="">{jobs.loading && !jobs.latest ? 'Loading jobs…' : 'Choose a job'}</option>
                  <For each={jobOptions()}>{(j) => <option value={j.id} selected={form.job_id === j.id}>{j.name}</option>}</For>
                </SelectField>
                <Show when={!jobs.error && (jobs.latest?.next || jobQuery())}>
                  <Field label="Find a job" type="search" value={jobQuery()} onInput={(e) => setJobQuery(e.currentTarget.value)} hint="More than 500 jobs: type part of a name." />
                </Show>
              </div>
            </div>
            <TextAreaField label="Description" rows={2} value={form.description} onInput={(e) => setForm('description', e.currentTarget.value)} error={fieldError('description')} class="plain-textarea" />
            <Show when={form.job_id}>
              <h3 class="subsection">Parameters</h3>
              <Show when={!job.error} fallback={<ErrorPanel title="Could not load the job’s parameters" error={job.error} />}>
                <Show when={job.latest} fallback={<p class="hint" aria-busy="true">Loading the job’s parameters…</p>}>
                  <ParamsEditor defs={defs()} values={form.parameters} onChange={(name, value) => setForm('parameters', name, value)} storedSecrets={storedSecrets()} errors={errors()} disabled={readOnly()} />
                  <Field
                    label="Targets (override)"
                    name="targets"
                    class="mono"
                    value={form.targets}
                    placeholder={typeof job.latest?.targets === 'string' ? job.latest.targets : ''}
                    onInput={(e) => setForm('targets', e.currentTarget.value)}
                    error={fieldError('targets')}
                    hint={`A target selector such as tag:role=db. Empty: the job’s own${typeof job.latest?.targets === 'string' ? ` (${job.latest.targets})` : ''}.`}
                  />
                </Show>
              </Show>
            </Show>
          </fieldset>

          <fieldset class="card form-section" disabled={readOnly()}>
            <legend class="section-title">When</legend>
            <CronBuilder value={form.cron} onChange={(cron) => setForm('cron', cron)} error={fieldError('cron')} disabled={readOnly()} />
            <ZoneField value={form.timezone} onZone={(z) => setForm('timezone', z)} error={fieldError('timezone')} name="timezone" required />
            <div class="form-grid">
              <Field label="Not before" type="datetime-local" value={form.start_at} onInput={(e) => setForm('start_at', e.currentTarget.value)} error={fieldError('start_at')} hint={`Optional, in ${form.timezone || 'the zone'}.`} />
              <Field label="Not after" type="datetime-local" value={form.end_at} onInput={(e) => setForm('end_at', e.currentTarget.value)} error={fieldError('end_at')} hint={`Optional, in ${form.timezone || 'the zone'}.`} />
            </div>
            <label class="check">
              <input type="checkbox" checked={form.enabled} onChange={(e) => setForm('enabled', e.currentTarget.checked)} />
              <span>Enabled</span>
            </label>
          </fieldset>

          <fieldset class="card form-section" disabled={readOnly()}>
            <legend class="section-title">Policies</legend>
            <div class="form-grid">
              <SelectField label="Missed fires" value={form.misfire_policy} onChange={(e) => setForm('misfire_policy', e.currentTarget.value as MisfirePolicy)} error={fieldError('misfire_policy')}>
                <For each={Object.entries(MISFIRE)}>{([v, label]) => <option value={v} selected={form.misfire_policy === v}>{label}</option>}</For>
              </SelectField>
              <Field label="Catch up within (seconds)" type="number" min="0" value={form.misfire_max_lateness_sec} onInput={(e) => setForm('misfire_max_lateness_sec', e.currentTarget.value)} error={fieldError('misfire_max_lateness_sec')} hint="Fires found later than this are missed." />
              <SelectField label="Overlapping runs" value={form.concurrency_policy} onChange={(e) => setForm('concurrency_policy', e.currentTarget.value as ConcurrencyPolicy)} error={fieldError('concurrency_policy')}>
                <For each={Object.entries(CONCURRENCY)}>{([v, label]) => <option value={v} selected={form.concurrency_policy === v}>{label}</option>}</For>
              </SelectField>
              <Field label="Max concurrent runs" type="number" min="1" value={form.max_concurrent_runs} onInput={(e) => setForm('max_concurrent_runs', e.currentTarget.value)} error={fieldError('max_concurrent_runs')} />
              <Field label="Retries of a failed run" type="number" min="0" value={form.retry_count} onInput={(e) => setForm('retry_count', e.currentTarget.value)} error={fieldError('retry.count')} />
              <Field label="First retry after (seconds)" type="number" min="0" value={form.retry_delay_sec} onInput={(e) => setForm('retry_delay_sec', e.currentTarget.value)} error={fieldError('retry.delay_sec')} />
              <Field label="Backoff factor" type="number" min="1" step="0.1" value={form.retry_backoff} onInput={(e) => setForm('retry_backoff', e.currentTarget.value)} error={fieldError('retry.backoff')} hint="Each further retry waits this many times longer." />
            </div>
          </fieldset>

          <Show when={can('operator')}>
            <SaveActions label="Save schedule" pending={pending()} saved={saved()} error={error()} errorTitle="Could not save the schedule" back={props.existing ? undefined : { href: '/schedules', label: 'Cancel' }} />
          </Show>
        </div>
        <aside class="schedule-side">
          <NextFires cron={form.cron} timezone={form.timezone} startAt={instant(form.start_at)} endAt={instant(form.end_at)} onProblems={setPreviewProblems} />
        </aside>
      </div>
    </form>
  )
}
