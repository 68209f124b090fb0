import { createEffect, createResource, createSignal, For, Index, on, Show } from 'solid-js'
import type { SetStoreFunction } from 'solid-js/store'
import { Field, SelectField, TextAreaField } from '../../components/form.tsx'
import { CheckboxField } from './field-control.tsx'
import { listJobs } from './jobs-api.ts'
import { errorUnder, isObject, moveItem, newKey, remapStepErrors, splitList, uniqueStepId, withField, withoutErrorsAt, type Draft, type JsonObject } from './model.ts'
import { Palette, paletteItemById, type PaletteItem } from './palette.tsx'
import { ParametersEditor } from './parameters-editor.tsx'
import { SelectorField } from './selector-field.tsx'
import { StepList } from './step-list.tsx'

/*
 * The builder's form: general fields, default targets (with a live preview), parameters, the
 * ordered steps with their palette, execution policy and the jobs that trigger this one.
 */

interface Props {
  draft: Draft
  setDraft: SetStoreFunction<Draft>
  errors: Record<string, string>
  setErrors: (e: Record<string, string>) => void
  announce: (text: string) => void
  onChange: () => void
  excludeJobId?: string | undefined
}

const str = (v: unknown) => (v === undefined || v === null ? '' : String(v))
const num = (text: string) => (text === '' ? undefined : Number.isFinite(Number(text)) ? Number(text) : text)

export function BuilderForm(props: Props) {
  const [expanded, setExpanded] = createSignal<ReadonlySet<string>>(new Set(props.draft.steps.length <= 3 ? props.draft.steps.map((s) => s.key) : []))
  const [paletteOpen, setPaletteOpen] = createSignal(props.draft.steps.length === 0)
  const err = (path: string) => errorUnder(props.errors, path)
  const keys = () => props.draft.steps.map((s) => s.key)
  const expand = (key: string) => setExpanded((s) => new Set([...s, key]))

  // After a refused save, open every step the server found a problem in.
  createEffect(
    on(
      () => props.errors,
      (errors) => {
        for (const path of Object.keys(errors)) {
          const m = /^steps\[(\d+)\]/.exec(path)
          const key = m ? props.draft.steps[Number(m[1])]?.key : undefined
          if (key) expand(key)
        }
      },
    ),
  )

  const setJob = (key: string, value: unknown) => {
    props.setDraft('job', key, value as never)
    props.setErrors(withoutErrorsAt(props.errors, key))
    props.onChange()
  }
  const setNested = (group: 'fan_out' | 'retry', key: string, value: unknown) => {
    const next = withField(isObject(props.draft.job[group]) ? (props.draft.job[group] as JsonObject) : {}, key, value)
    props.setDraft('job', group, (Object.keys(next).length ? next : undefined) as never)
    props.setErrors(withoutErrorsAt(props.errors, `${group}.${key}`))
    props.onChange()
  }
  const nested = (group: 'fan_out' | 'retry', key: string) => {
    const g = props.draft.job[group]
    return isObject(g) ? str(g[key]) : ''
  }

  const titleOf = (fields: JsonObject) => (typeof fields.name === 'string' && fields.name ? fields.name : String(fields.type ?? 'step'))

  const move = (from: number, to: number, how: 'keyboard' | 'drag') => {
    const n = props.draft.steps.length
    if (to < 0 || to >= n || from === to) return
    const focusKind = (document.activeElement as HTMLElement | null)?.dataset?.focus
    const step = props.draft.steps[from]!
    const before = keys()
    props.setDraft('steps', moveItem(props.draft.steps, from, to))
    props.setErrors(remapStepErrors(props.errors, before, keys()))
    props.announce(`Moved “${titleOf(step.fields)}” to position ${to + 1} of ${n}.`)
    props.onChange()
    if (how === 'keyboard') {
      // Moving a node in the DOM blurs it: give focus back to the same control of the moved step.
      requestAnimationFrame(() => document.querySelector<HTMLElement>(`[data-step-key="${step.key}"] [data-focus="${focusKind ?? 'title'}"]`)?.focus())
    }
  }

  const addStep = (item: PaletteItem, at = props.draft.steps.length) => {
    const label = item.kind === 'template' ? item.template.label : item.info.label
    const preset: JsonObject = item.kind === 'template' ? structuredClone(item.template.step) : { type: item.info.type }
    const id = uniqueStepId(item.kind === 'template' ? item.template.id : item.info.type, props.draft.steps.map((s) => str(s.fields.id)))
    const step = { key: newKey(), fields: { id, name: label, ...preset } }
    const before = keys()
    const steps = [...props.draft.steps]
    steps.splice(at, 0, step)
    props.setDraft('steps', steps)
    props.setErrors(remapStepErrors(props.errors, before, keys()))
    // A template's parameters (e.g. `service`) come with it unless the job has them.
    const wanted = item.kind === 'template' ? (item.template.parameters ?? []) : []
    const current = props.draft.job.parameters
    if (wanted.length && (current === undefined || Array.isArray(current))) {
      const list = (current ?? []) as JsonObject[]
      const missing = wanted.filter((p) => !list.some((q) => q.name === p.name))
      if (missing.length) props.setDraft('job', 'parameters', [...list, ...missing.map((p) => ({ ...p }))] as never)
    }
    expand(step.key)
    props.announce(`Added step ${at + 1} of ${steps.length}: ${label}.`)
    props.onChange()
  }

  const removeStep = (index: number) => {
    const step = props.draft.steps[index]
    if (!step) return
    const before = keys()
    props.setDraft(
      'steps',
      props.draft.steps.filter((_, i) => i !== index),
    )
    props.setErrors(remapStepErrors(props.errors, before, keys()))
    props.announce(`Removed step ${index + 1}: ${titleOf(step.fields)}.`)
    props.onChange()
    const next = props.draft.steps[Math.min(index, props.draft.steps.length - 1)]
    requestAnimationFrame(() => (next ? document.getElementById(`step-title-${next.key}`) : document.getElementById('add-step'))?.focus())
  }

  return (
    <div class="builder-form">
      <section class="card builder-section" aria-labelledby="sec-general">
        <h2 id="sec-general">General</h2>
        <div class="form-grid">
          <Field id="f-job-name" label="Name (required)" aria-required="true" value={str(props.draft.job.name)} error={err('name')} onInput={(e) => setJob('name', e.currentTarget.value)} />
          <Field id="f-job-tags" label="Tags (comma-separated)" value={Array.isArray(props.draft.job.tags) ? props.draft.job.tags.join(', ') : ''} error={err('tags')} onChange={(e) => setJob('tags', splitList(e.currentTarget.value))} />
        </div>
        <TextAreaField id="f-job-description" label="Description" rows={2} value={str(props.draft.job.description)} error={err('description')} onInput={(e) => setJob('description', e.currentTarget.value || undefined)} />
        <CheckboxField id="f-job-enabled" label="Enabled (schedules and triggers start runs)" checked={props.draft.job.enabled !== false} error={err('enabled')} onChange={(v) => setJob('enabled', v)} />
      </section>

      <section class="card builder-section" aria-labelledby="sec-targets">
        <h2 id="sec-targets">Targets</h2>
        <SelectorField id="f-job-targets" label="Default targets (selector)" value={str(props.draft.job.targets)} error={err('targets')} emptyMeans="each run names its targets" onInput={(v) => setJob('targets', v === '' ? undefined : v)} />
      </section>

      <section class="card builder-section" aria-labelledby="sec-params">
        <h2 id="sec-params">Parameters</h2>
        <ParametersEditor value={props.draft.job.parameters} errors={props.errors} onChange={(list) => setJob('parameters', list)} />
      </section>

      <section class="card builder-section" aria-labelledby="sec-steps">
        <h2 id="sec-steps">Steps</h2>
        <Show when={props.errors.steps}>
          <p class="field-error">{props.errors.steps}</p>
        </Show>
        <p class="hint">Drag a step by its handle, or use Move up / Move down (Alt+↑ / Alt+↓ on a step’s title) to reorder.</p>
        <div class="steps-layout" classList={{ 'with-palette': paletteOpen() }}>
          <div class="steps-main">
            <StepList
              steps={props.draft.steps}
              errors={props.errors}
              expanded={(k) => expanded().has(k)}
              onToggle={(k) => setExpanded((s) => (s.has(k) ? new Set([...s].filter((x) => x !== k)) : new Set([...s, k])))}
              onMove={move}
              onRemove={removeStep}
              onField={(i, key, value) => {
                props.setDraft('steps', i, 'fields', key, value as never)
                props.setErrors(withoutErrorsAt(props.errors, `steps[${i}].${key}`))
                props.onChange()
              }}
              onDropNew={(id, at) => {
                const item = paletteItemById(id)
                if (item) addStep(item, at)
              }}
            />
            <button type="button" id="add-step" class="button" aria-expanded={paletteOpen()} aria-controls="step-palette" onClick={() => setPaletteOpen(!paletteOpen())}>
              Add step
            </button>
          </div>
          <Show when={paletteOpen()}>
            <Palette id="step-palette" onAdd={(item) => addStep(item)} />
          </Show>
        </div>
      </section>

      <details class="card builder-section" open={['fan_out', 'retry', 'timeout_sec', 'lock', 'max_concurrent_runs'].some((k) => err(k)) || undefined}>
        <summary>
          <h2>Execution</h2>
        </summary>
        <div class="form-grid">
          <Field id="f-job-fan_out-max_parallel" label="Targets at once" type="number" value={nested('fan_out', 'max_parallel')} error={err('fan_out.max_parallel')} hint="Default 100" onChange={(e) => setNested('fan_out', 'max_parallel', num(e.currentTarget.value))} />
          <SelectField id="f-job-fan_out-strategy" label="Fan-out" value={nested('fan_out', 'strategy')} error={err('fan_out.strategy')} onChange={(e) => setNested('fan_out', 'strategy', e.currentTarget.value || undefined)}>
            <option value="">(default: per target)</option>
            <option value="per_target">per target: each target runs all steps</option>
            <option value="step_by_step">step by step: a step ends everywhere first</option>
          </SelectField>
          <Field id="f-job-fan_out-failure_count" label="Stop after failed targets" type="number" value={nested('fan_out', 'failure_count')} error={err('fan_out.failure_count')} onChange={(e) => setNested('fan_out', 'failure_count', num(e.currentTarget.value))} />
          <Field id="f-job-fan_out-failure_percent" label="… or failed percent" type="number" step="any" value={nested('fan_out', 'failure_percent')} error={err('fan_out.failure_percent')} onChange={(e) => setNested('fan_out', 'failure_percent', num(e.currentTarget.value))} />
          <Field id="f-job-timeout_sec" label="Run timeout (seconds)" type="number" value={str(props.draft.job.timeout_sec)} error={err('timeout_sec')} onChange={(e) => setJob('timeout_sec', num(e.currentTarget.value))} />
          <Field id="f-job-retry-retries" label="Retries per step" type="number" value={nested('retry', 'retries')} error={err('retry.retries')} onChange={(e) => setNested('retry', 'retries', num(e.currentTarget.value))} />
          <Field id="f-job-retry-backoff_sec" label="Retry backoff (seconds)" type="number" step="any" value={nested('retry', 'backoff_sec')} error={err('retry.backoff_sec')} onChange={(e) => setNested('retry', 'backoff_sec', num(e.currentTarget.value))} />
          <Field id="f-job-max_concurrent_runs" label="Runs at once" type="number" value={str(props.draft.job.max_concurrent_runs)} error={err('max_concurrent_runs')} hint="Empty: no limit" onChange={(e) => setJob('max_concurrent_runs', num(e.currentTarget.value))} />
          <SelectField id="f-job-lock" label="Target lock" value={str(props.draft.job.lock)} error={err('lock')} onChange={(e) => setJob('lock', e.currentTarget.value || null)}>
            <option value="">none</option>
            <option value="target">one locked run per target at a time</option>
          </SelectField>
        </div>
      </details>

      <section class="card builder-section" aria-labelledby="sec-deps">
        <h2 id="sec-deps">Triggered by</h2>
        <DependenciesEditor value={props.draft.job.triggered_by} errors={props.errors} excludeJobId={props.excludeJobId} onChange={(list) => setJob('triggered_by', list)} />
      </section>
    </div>
  )
}

function DependenciesEditor(props: { value: unknown; errors: Record<string, string>; excludeJobId?: string | undefined; onChange: (list: JsonObject[]) => void }) {
  const [jobs] = createResource(() => listJobs({ limit: 500 }))
  const list = (): JsonObject[] => (Array.isArray(props.value) ? props.value.map((d) => (isObject(d) ? d : {})) : [])
  const set = (i: number, key: string, v: unknown) => props.onChange(list().map((d, j) => (j === i ? withField(d, key, v) : d)))
  const options = () => (jobs.latest?.items ?? []).filter((j) => j.id !== props.excludeJobId)
  return (
    <div class="dependencies">
      <Show when={list().length === 0}>
        <p class="hint">No upstream jobs: this job runs when started by hand or by a schedule.</p>
      </Show>
      <ol class="param-list" aria-label="Upstream jobs">
        <Index each={list()}>
          {(d, i) => (
            <li class="param-card">
              <div role="group" aria-label={`Upstream job ${i + 1}`} class="form-grid">
                <Show
                  when={!jobs.error}
                  fallback={<Field id={`f-dep-${i}-job`} label="Upstream job (name or id)" value={str(d().job)} error={errorUnder(props.errors, `triggered_by[${i}].job`)} onInput={(e) => set(i, 'job', e.currentTarget.value)} />}
                >
                  <SelectField id={`f-dep-${i}-job`} label="Upstream job" value={str(d().job)} error={errorUnder(props.errors, `triggered_by[${i}].job`)} onChange={(e) => set(i, 'job', e.currentTarget.value)}>
                    <option value="">Choose a job…</option>
                    <For each={options()}>
                      {(j) => (
                        <option value={j.id} selected={d().job === j.id}>
                          {j.name}
                        </option>
                      )}
                    </For>
                    <Show when={str(d().job) && !options().some((j) => j.id === d().job)}>
                      <option value={str(d().job)} selected>
                        {str(d().job)}
                      </option>
                    </Show>
                  </SelectField>
                </Show>
                <SelectField id={`f-dep-${i}-on`} label="When it ends with" value={str(d().on) || 'success'} error={errorUnder(props.errors, `triggered_by[${i}].on`)} onChange={(e) => set(i, 'on', e.currentTarget.value)}>
                  <option value="success">success</option>
                  <option value="failure">failure</option>
                  <option value="any">any outcome</option>
                </SelectField>
                <CheckboxField id={`f-dep-${i}-pass_parameters`} label="Pass its parameters of the same name" checked={d().pass_parameters === true} onChange={(v) => set(i, 'pass_parameters', v)} />
                <button type="button" class="button small danger" onClick={() => props.onChange(list().filter((_, j) => j !== i))}>
                  Remove upstream job
                </button>
              </div>
            </li>
          )}
        </Index>
      </ol>
      <button type="button" class="button" onClick={() => props.onChange([...list(), { job: '', on: 'success' }])}>
        Add upstream job
      </button>
    </div>
  )
}
