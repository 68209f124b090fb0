import { useNavigate } from '@solidjs/router'
import { createSignal, For, Match, Show, Switch } from 'solid-js'
import { createStore } from 'solid-js/store'
import { fieldErrors } from '../../api.ts'
import { DataTable } from '../../components/data-table.tsx'
import { Dialog } from '../../components/dialog.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { Field, SelectField } from '../../components/form.tsx'
import { CheckboxField } from './field-control.tsx'
import { launchRun, planRun, type Job, type JobParameter, type Plan, type RunRequest } from './jobs-api.ts'
import { SelectorField } from './selector-field.tsx'

/*
 * Run a job: typed inputs for its parameters, an optional target override, a dry-run plan
 * (POST /jobs/:id/plan: the targets and steps it would run) and then the run itself, after
 * which the run's page opens. Changing an input makes the plan stale until it is previewed again.
 */

type Values = Record<string, string | boolean>

const initialValue = (p: JobParameter): string | boolean => (p.type === 'boolean' ? p.default === true || p.default === 'true' : p.default === undefined ? '' : String(p.default))

export function RunDialog(props: { job: Job; onClose: () => void }) {
  const navigate = useNavigate()
  const [values, setValues] = createStore<Values>(Object.fromEntries(props.job.parameters.map((p) => [p.name, initialValue(p)])))
  const [targets, setTargets] = createSignal('')
  const [plan, setPlan] = createSignal<Plan | null>(null)
  const [error, setError] = createSignal<unknown>(null)
  const [busy, setBusy] = createSignal<'plan' | 'run' | null>(null)
  const [failed, setFailed] = createSignal<'plan' | 'run'>('plan')
  const [status, setStatus] = createSignal('')
  const errors = () => fieldErrors(error())

  const request = (): RunRequest => {
    const parameters: RunRequest['parameters'] = {}
    for (const p of props.job.parameters) {
      const v = values[p.name]
      if (v === undefined || v === '') continue
      parameters[p.name] = p.type === 'number' && typeof v === 'string' && Number.isFinite(Number(v)) ? Number(v) : v
    }
    return targets().trim() ? { parameters, targets: targets().trim() } : { parameters }
  }
  const edited = () => {
    setStatus('')
    setPlan(null)
    setError(null)
  }
  const preview = async () => {
    setBusy('plan')
    setError(null)
    try {
      const planned = await planRun(props.job.id, request())
      setPlan(planned)
      setStatus(`Plan ready: ${planned.steps.length} ${planned.steps.length === 1 ? 'step' : 'steps'} on ${planned.target_count} ${planned.target_count === 1 ? 'target' : 'targets'}.`)
      requestAnimationFrame(() => document.getElementById('plan-title')?.scrollIntoView({ block: 'nearest', behavior: 'smooth' }))
    } catch (err) {
      setPlan(null)
      setFailed('plan')
      setError(err)
    } finally {
      setBusy(null)
    }
  }
  const launch = async () => {
    setBusy('run')
    setError(null)
    try {
      const launched = await launchRun(props.job.id, request())
      props.onClose()
      navigate(`/runs/${launched.run_id}`)
    } catch (err) {
      setFailed('run')
      setError(err)
    } finally {
      setBusy(null)
    }
  }

  return (
    <Dialog
      title={`Run ${props.job.name}`}
      onClose={props.onClose}
      class="run-dialog"
      wide
      busy={busy() !== null}
      footer={
        <>
          <button type="button" class="button" onClick={() => props.onClose()}>
            Cancel
          </button>
          <button type="button" class="button" classList={{ primary: !plan() }} disabled={busy() !== null} onClick={() => void preview()}>
            {busy() === 'plan' ? 'Planning…' : 'Preview plan'}
          </button>
          <button type="button" class="button" classList={{ primary: !!plan() }} disabled={busy() !== null || !plan()} title={plan() ? undefined : 'Preview the plan first'} onClick={() => void launch()}>
            {busy() === 'run' ? 'Starting…' : 'Launch run'}
          </button>
        </>
      }
    >
      <form
        onSubmit={(e) => {
          e.preventDefault()
          void (plan() ? launch() : preview())
        }}
      >
        <Show when={props.job.parameters.length} fallback={<p class="hint">This job has no parameters.</p>}>
          <fieldset class="run-params">
            <legend>Parameters</legend>
            <For each={props.job.parameters}>
              {(p) => (
                <ParameterInput
                  param={p}
                  value={values[p.name] ?? ''}
                  error={errors()[`parameters.${p.name}`]}
                  onChange={(v) => {
                    setValues(p.name, v)
                    edited()
                  }}
                />
              )}
            </For>
          </fieldset>
        </Show>
        <SelectorField
          id="run-targets"
          label="Targets (override)"
          value={targets()}
          error={errors().targets}
          emptyMeans={props.job.targets ? `the job's targets (${props.job.targets})` : 'the job has no default targets'}
          onInput={(v) => {
            setTargets(v)
            edited()
          }}
        />
        <button type="submit" hidden tabindex="-1" aria-hidden="true" />
      </form>
      <Show when={error() && !Object.keys(errors()).length}>
        <ErrorPanel title={failed() === 'run' ? 'Could not start the run' : 'Could not plan the run'} error={error()} />
      </Show>
      <Show when={error() && Object.keys(errors()).length}>
        <p class="field-error" role="alert">
          Fix the marked fields: {Object.entries(errors()).map(([k, v]) => `${k} ${v}`).join('; ')}
        </p>
      </Show>
      <p class="visually-hidden" role="status">
        {status()}
      </p>
      <Show when={plan()}>{(p) => <PlanView plan={p()} />}</Show>
    </Dialog>
  )
}

function ParameterInput(props: { param: JobParameter; value: string | boolean; error: string | undefined; onChange: (v: string | boolean) => void }) {
  const id = `run-param-${props.param.name}`
  const label = () => `${props.param.label ?? props.param.name}${props.param.required ? ' (required)' : ''}`
  const hint = () => props.param.description ?? (props.param.label ? props.param.name : undefined)
  return (
    <Switch
      fallback={<Field id={id} label={label()} hint={hint()} error={props.error} aria-required={props.param.required ? 'true' : undefined} value={String(props.value)} onInput={(e) => props.onChange(e.currentTarget.value)} />}
    >
      <Match when={props.param.type === 'boolean'}>
        <CheckboxField id={id} label={label()} hint={hint()} error={props.error} checked={props.value === true} onChange={props.onChange} />
      </Match>
      <Match when={props.param.type === 'choice'}>
        <SelectField id={id} label={label()} error={props.error} value={String(props.value)} onChange={(e) => props.onChange(e.currentTarget.value)}>
          <option value="" selected={props.value === ''}>
            {props.param.required ? 'Choose…' : '(none)'}
          </option>
          <For each={props.param.choices ?? []}>
            {(c) => (
              <option value={c} selected={props.value === c}>
                {c}
              </option>
            )}
          </For>
        </SelectField>
      </Match>
      <Match when={props.param.type === 'number'}>
        <Field id={id} label={label()} hint={hint()} error={props.error} type="number" step="any" min={props.param.min} max={props.param.max} value={String(props.value)} onInput={(e) => props.onChange(e.currentTarget.value)} />
      </Match>
      <Match when={props.param.type === 'secret'}>
        <Field id={id} label={label()} hint={hint() ?? 'Masked in the run and its output'} error={props.error} type="password" autocomplete="off" value={String(props.value)} onInput={(e) => props.onChange(e.currentTarget.value)} />
      </Match>
      <Match when={props.param.type === 'target_selector'}>
        <SelectorField id={id} label={label()} error={props.error} value={String(props.value)} onInput={props.onChange} />
      </Match>
    </Switch>
  )
}

function PlanView(props: { plan: Plan }) {
  return (
    <section class="plan" aria-labelledby="plan-title">
      <h3 id="plan-title">Plan</h3>
      <p>
        Version {props.plan.job_version} on <strong>{props.plan.target_count}</strong> {props.plan.target_count === 1 ? 'target' : 'targets'}
        <Show when={props.plan.selector}>
          {' '}
          (<span class="mono">{props.plan.selector}</span>)
        </Show>
        .
      </p>
      <Show when={Object.keys(props.plan.parameters).length}>
        <dl class="facts plan-params">
          <For each={Object.entries(props.plan.parameters)}>
            {([k, v]) => (
              <>
                <dt class="mono">{k}</dt>
                <dd class="mono">{String(v)}</dd>
              </>
            )}
          </For>
        </dl>
      </Show>
      <Show when={props.plan.targets.length}>
        <details>
          <summary>Targets ({props.plan.target_count})</summary>
          <ul class="resolved-list">
            <For each={props.plan.targets}>
              {(t) => (
                <li>
                  <span class="mono">{t.name}</span> <span class="hint">{t.address} · {t.connection}</span>
                </li>
              )}
            </For>
          </ul>
        </details>
      </Show>
      <DataTable label="Steps of the plan" columns={['#', 'Step', 'Type', 'Runs on']} focusable each={props.plan.steps}>
        {(s) => (
          <tr>
            <td>{s.index + 1}</td>
            <td>{s.name}</td>
            <td class="mono">{s.type}</td>
            <td>{s.targets.length === 1 && s.targets[0]?.target_id === null ? 'the controller (no target)' : `${s.target_count} ${s.target_count === 1 ? 'target' : 'targets'}${transports(s.targets)}`}</td>
          </tr>
        )}
      </DataTable>
    </section>
  )
}

const transports = (targets: { transport: string }[]) => {
  const set = [...new Set(targets.map((t) => t.transport))]
  return set.length ? ` via ${set.join(', ')}` : ''
}
