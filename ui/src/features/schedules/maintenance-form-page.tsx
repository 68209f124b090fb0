import { useNavigate, useParams } from '@solidjs/router'
import { createResource, createSignal, For, Index, Match, Show, Switch } from 'solid-js'
import { createStore, produce } from 'solid-js/store'
import type { Weekday, WindowAction, WindowKind } from '../../../../controller/src/scheduler/maintenance.sql.ts'
import { api, getJson, send, unwrap } from '../../api.ts'
import { Badge } from '../../components/badge.tsx'
import { ConfirmButton } from '../../components/dialog.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { createSubmit, Field, SaveActions, SelectField, TextAreaField } from '../../components/form.tsx'
import { LoadById } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { can } from '../../session.ts'
import { CronBuilder } from './cron-builder.tsx'
import { SchedulesNav } from './schedules-nav.tsx'
import { browserZone, formatInZone, instantToWall, wallToInstant } from './time.ts'
import type { GroupList, MaintenanceWindow } from './types.ts'
import { ZoneField } from './zone-field.tsx'
import './schedules.css'

/*
 * A maintenance window: one-off (start, end), recurring (a cron expression opening it for a
 * duration) or weekly day/time ranges, all in its zone; which targets it covers; skip or defer.
 */

const KINDS: Record<WindowKind, string> = { one_off: 'One-off', cron: 'Recurring (cron expression)', weekly: 'Weekly day and time ranges' }
const ACTIONS: Record<WindowAction, string> = { skip: 'Skip fires while open', defer: 'Defer fires to the window’s end' }
const DAYS: { id: Weekday; short: string; long: string }[] = [
  { id: 'mon', short: 'Mon', long: 'Monday' },
  { id: 'tue', short: 'Tue', long: 'Tuesday' },
  { id: 'wed', short: 'Wed', long: 'Wednesday' },
  { id: 'thu', short: 'Thu', long: 'Thursday' },
  { id: 'fri', short: 'Fri', long: 'Friday' },
  { id: 'sat', short: 'Sat', long: 'Saturday' },
  { id: 'sun', short: 'Sun', long: 'Sunday' },
]

interface RangeState {
  days: Weekday[]
  start: string
  end: string
}

interface WindowForm {
  name: string
  description: string
  enabled: boolean
  timezone: string
  kind: WindowKind
  starts_at: string
  ends_at: string
  cron: string
  duration_min: string
  ranges: RangeState[]
  scope: 'all' | 'some'
  selector: string
  groups: string[]
  target_ids: string
  action: WindowAction
}

function blank(): WindowForm {
  return {
    name: '',
    description: '',
    enabled: true,
    timezone: browserZone(),
    kind: 'one_off',
    starts_at: '',
    ends_at: '',
    cron: '0 2 * * 0',
    duration_min: '120',
    ranges: [{ days: ['sat'], start: '22:00', end: '02:00' }],
    scope: 'all',
    selector: '',
    groups: [],
    target_ids: '',
    action: 'skip',
  }
}

function fromWindow(w: MaintenanceWindow): WindowForm {
  const scope = w.applies_to
  return {
    ...blank(),
    name: w.name,
    description: w.description ?? '',
    enabled: w.enabled,
    timezone: w.timezone,
    kind: w.kind,
    starts_at: w.starts_at ? instantToWall(w.starts_at, w.timezone) : '',
    ends_at: w.ends_at ? instantToWall(w.ends_at, w.timezone) : '',
    cron: w.cron ?? blank().cron,
    duration_min: w.duration_sec ? String(w.duration_sec / 60) : blank().duration_min,
    ranges: w.ranges ? w.ranges.map((r) => ({ days: [...r.days], start: r.start, end: r.end })) : blank().ranges,
    scope: scope === 'all' ? 'all' : 'some',
    selector: scope === 'all' ? '' : (scope.selector ?? ''),
    groups: scope === 'all' ? [] : [...(scope.groups ?? [])],
    target_ids: scope === 'all' ? '' : (scope.target_ids ?? []).join('\n'),
    action: w.action,
  }
}

export function MaintenanceFormPage() {
  const params = useParams<{ id?: string }>()
  return (
    <section class="maintenance-form-page">
      <LoadById
        id={params.id}
        fetch={(id) => unwrap(api['maintenance-windows'][':id'].$get({ param: { id } }), 'GET /maintenance-windows/:id')}
        what="the maintenance window"
        header={
          <>
            <PageHeader title="Maintenance window" />
            <SchedulesNav />
          </>
        }
        fallback={
          <>
            <PageHeader title="New maintenance window" subtitle="Skip or defer scheduled runs while it is open." />
            <SchedulesNav />
            <WindowEditor onSaved={() => {}} />
          </>
        }
      >
        {(value, update) => <ExistingWindow window={value()} onChanged={update} />}
      </LoadById>
    </section>
  )
}

function ExistingWindow(props: { window: MaintenanceWindow; onChanged: (w: MaintenanceWindow) => void }) {
  const navigate = useNavigate()
  const w = () => props.window
  return (
    <>
      <PageHeader
        title={w().name}
        subtitle={`${KINDS[w().kind]} · ${w().timezone} · ${w().action}`}
        actions={
          <Show when={can('operator')}>
            <ConfirmButton
              label="Delete"
              title={`Delete maintenance window “${w().name}”?`}
              confirmLabel="Delete window"
              danger
              errorTitle="Could not delete the window"
              action={async () => {
                await send('DELETE', `/api/v1/maintenance-windows/${w().id}`)
                navigate('/schedules/maintenance')
              }}
            >
              <p>Scheduled fires it would have skipped or deferred run as usual again.</p>
            </ConfirmButton>
          </Show>
        }
      />
      <SchedulesNav />
      <Show when={w().active}>
        {(a) => (
          <p class="open-now">
            <Badge tone="active">Open now</Badge> until {formatInZone(a().end, w().timezone)}
          </p>
        )}
      </Show>
      <WindowEditor existing={w()} onSaved={props.onChanged} />
    </>
  )
}

function WindowEditor(props: { existing?: MaintenanceWindow; onSaved: (w: MaintenanceWindow) => void }) {
  const navigate = useNavigate()
  const readOnly = () => !can('operator')
  const [form, setForm] = createStore<WindowForm>(props.existing ? fromWindow(props.existing) : blank())
  const [saved, setSaved] = createSignal(false)
  const [groups] = createResource(() => getJson<GroupList>('/api/v1/target-groups?limit=500'))
  const instant = (wall: string) => (wall ? (wallToInstant(wall, form.timezone)?.toISOString() ?? wall) : null)

  const { submit, pending, error, errors } = createSubmit(async () => {
    setSaved(false)
    const ids = form.target_ids.split(/[\s,]+/).filter(Boolean)
    const body = {
      name: form.name,
      description: form.description.trim() || null,
      enabled: form.enabled,
      timezone: form.timezone,
      kind: form.kind,
      starts_at: form.kind === 'one_off' ? instant(form.starts_at) : null,
      ends_at: form.kind === 'one_off' ? instant(form.ends_at) : null,
      cron: form.kind === 'cron' ? form.cron : null,
      duration_sec: form.kind === 'cron' ? (Number.isFinite(Number(form.duration_min)) && form.duration_min.trim() ? Math.round(Number(form.duration_min) * 60) : null) : null,
      ranges: form.kind === 'weekly' ? form.ranges.map((r) => ({ days: r.days, start: r.start, end: r.end })) : null,
      applies_to:
        form.scope === 'all'
          ? 'all'
          : {
              ...(form.selector.trim() ? { selector: form.selector.trim() } : {}),
              ...(form.groups.length ? { groups: form.groups } : {}),
              ...(ids.length ? { target_ids: ids } : {}),
            },
      action: form.action,
    }
    const result = props.existing ? await send<MaintenanceWindow>('PUT', `/api/v1/maintenance-windows/${props.existing.id}`, body) : await send<MaintenanceWindow>('POST', '/api/v1/maintenance-windows', body)
    if (props.existing) {
      setSaved(true)
      props.onSaved(result)
    } else navigate('/schedules/maintenance')
    return result
  })
  const err = (path: string) => errors()[path]

  return (
    <form class="window-form" onSubmit={(e) => void submit(e)} novalidate aria-label={props.existing ? 'Edit maintenance window' : 'New maintenance window'}>
      <fieldset class="card form-section" disabled={readOnly()}>
        <legend class="section-title">Window</legend>
        <div class="form-grid">
          <Field label="Name" required value={form.name} onInput={(e) => setForm('name', e.currentTarget.value)} error={err('name')} />
          <SelectField label="Kind" value={form.kind} onChange={(e) => setForm('kind', e.currentTarget.value as WindowKind)} error={err('kind')}>
            <For each={Object.entries(KINDS)}>{([v, label]) => <option value={v} selected={form.kind === v}>{label}</option>}</For>
          </SelectField>
        </div>
        <TextAreaField label="Description" rows={2} class="plain-textarea" value={form.description} onInput={(e) => setForm('description', e.currentTarget.value)} error={err('description')} />
        <ZoneField value={form.timezone} onZone={(z) => setForm('timezone', z)} error={err('timezone')} />
        <Switch>
          <Match when={form.kind === 'one_off'}>
            <div class="form-grid">
              <Field label="Starts" type="datetime-local" value={form.starts_at} onInput={(e) => setForm('starts_at', e.currentTarget.value)} error={err('starts_at')} hint={`In ${form.timezone}.`} />
              <Field label="Ends" type="datetime-local" value={form.ends_at} onInput={(e) => setForm('ends_at', e.currentTarget.value)} error={err('ends_at')} hint={`In ${form.timezone}.`} />
            </div>
          </Match>
          <Match when={form.kind === 'cron'}>
            <CronBuilder value={form.cron} onChange={(c) => setForm('cron', c)} error={err('cron')} disabled={readOnly()} />
            <Field label="Open for (minutes)" type="number" min="1" value={form.duration_min} onInput={(e) => setForm('duration_min', e.currentTarget.value)} error={err('duration_sec')} hint="From each fire of the expression; 1 minute to 31 days." />
          </Match>
          <Match when={form.kind === 'weekly'}>
            <div class="ranges">
              <Show when={err('ranges')}>{(m) => <p class="field-error">{m()}</p>}</Show>
              <Index each={form.ranges}>
                {(range, i) => (
                  <fieldset class="range-row">
                    <legend>Range {i + 1}</legend>
                    <div class="weekday-picker" role="group" aria-label={`Days of range ${i + 1}`}>
                      <For each={DAYS}>
                        {(d) => (
                          <label class="day-chip" title={d.long}>
                            <input
                              type="checkbox"
                              aria-label={`${d.long} (range ${i + 1})`}
                              checked={range().days.includes(d.id)}
                              onChange={(e) =>
                                setForm(
                                  'ranges',
                                  i,
                                  'days',
                                  e.currentTarget.checked ? [...range().days, d.id] : range().days.filter((x) => x !== d.id),
                                )
                              }
                            />
                            <span aria-hidden="true">{d.short}</span>
                          </label>
                        )}
                      </For>
                    </div>
                    <Show when={err(`ranges[${i}].days`)}>{(m) => <p class="field-error">{m()}</p>}</Show>
                    <div class="range-times">
                      <Field label={`From (range ${i + 1})`} type="time" value={range().start} onInput={(e) => setForm('ranges', i, 'start', e.currentTarget.value)} error={err(`ranges[${i}].start`)} />
                      <Field label={`To (range ${i + 1})`} type="time" value={range().end} onInput={(e) => setForm('ranges', i, 'end', e.currentTarget.value)} error={err(`ranges[${i}].end`)} hint="Before “From”: ends the next day." />
                      <Show when={form.ranges.length > 1}>
                        <button type="button" class="button small" onClick={() => setForm('ranges', (r) => r.filter((_, j) => j !== i))}>
                          Remove range {i + 1}
                        </button>
                      </Show>
                    </div>
                  </fieldset>
                )}
              </Index>
              <button type="button" class="button small" onClick={() => setForm('ranges', produce((r) => void r.push({ days: ['sun'], start: '01:00', end: '05:00' })))}>
                Add range
              </button>
            </div>
          </Match>
        </Switch>
        <label class="check">
          <input type="checkbox" checked={form.enabled} onChange={(e) => setForm('enabled', e.currentTarget.checked)} />
          <span>Enabled</span>
        </label>
      </fieldset>
      <fieldset class="card form-section" disabled={readOnly()}>
        <legend class="section-title">Targets and action</legend>
        <fieldset class="radio-row">
          <legend>Covers</legend>
          <label class="check">
            <input type="radio" name="scope" value="all" checked={form.scope === 'all'} onChange={() => setForm('scope', 'all')} />
            <span>All targets</span>
          </label>
          <label class="check">
            <input type="radio" name="scope" value="some" checked={form.scope === 'some'} onChange={() => setForm('scope', 'some')} />
            <span>Some targets</span>
          </label>
        </fieldset>
        <Show when={err('applies_to')}>{(m) => <p class="field-error">{m()}</p>}</Show>
        <Show when={form.scope === 'some'}>
          <Field label="Target selector" class="mono" value={form.selector} onInput={(e) => setForm('selector', e.currentTarget.value)} error={err('applies_to.selector')} hint="e.g. tag:env=prod and os:linux" />
          <Show when={!groups.error} fallback={<ErrorPanel title="Could not list target groups" error={groups.error} />}>
            <Show when={(groups.latest?.items.length ?? 0) > 0}>
              <fieldset class="group-picker">
                <legend>Target groups</legend>
                <For each={groups.latest?.items ?? []}>
                  {(g) => (
                    <label class="check">
                      <input type="checkbox" checked={form.groups.includes(g.id)} onChange={(e) => setForm('groups', e.currentTarget.checked ? [...form.groups, g.id] : form.groups.filter((x) => x !== g.id))} />
                      <span>{g.name}</span>
                    </label>
                  )}
                </For>
                <For each={form.groups.map((_, i) => err(`applies_to.groups[${i}]`)).filter(Boolean)}>{(m) => <p class="field-error">{m}</p>}</For>
              </fieldset>
            </Show>
          </Show>
          <TextAreaField label="Target ids" rows={2} value={form.target_ids} onInput={(e) => setForm('target_ids', e.currentTarget.value)} error={err('applies_to.target_ids')} hint="One id per line (or comma-separated)." />
        </Show>
        <SelectField label="While open" value={form.action} onChange={(e) => setForm('action', e.currentTarget.value as WindowAction)} error={err('action')}>
          <For each={Object.entries(ACTIONS)}>{([v, label]) => <option value={v} selected={form.action === v}>{label}</option>}</For>
        </SelectField>
      </fieldset>
      <Show when={can('operator')}>
        <SaveActions label="Save window" pending={pending()} saved={saved()} error={error()} errorTitle="Could not save the maintenance window" back={{ href: '/schedules/maintenance', label: props.existing ? 'Back' : 'Cancel' }} />
      </Show>
    </form>
  )
}
