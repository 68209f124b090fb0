import { A, useBeforeLeave, useNavigate, useParams } from '@solidjs/router'
import { createResource, createSignal, For, Match, Show, Switch } from 'solid-js'
import { createStore, reconcile, unwrap } from 'solid-js/store'
import { fieldErrors } from '../../api.ts'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { can } from '../../session.ts'
import { BuilderForm } from './builder-form.tsx'
import { createJob, getJob, updateJob } from './jobs-api.ts'
import { emptyDraft, fromDefinition, parseDefinitionText, prettyJson, toDefinition, type Draft } from './model.ts'
import { fieldId } from './step-list.tsx'
import './jobs.css'

/*
 * /jobs/new and /jobs/:id/edit: the form and the JSON view edit one draft. Save sends it as is;
 * the server's 400 names each problem by JSON path (`steps[1].url`), shown by its field and in a
 * summary whose entries jump to the field.
 */

export function JobBuilderPage() {
  const params = useParams<{ id?: string }>()
  const [job, { refetch }] = createResource(() => params.id, getJob)
  return (
    <Show when={params.id} fallback={<Builder initial={emptyDraft()} />}>
      <Switch fallback={<div class="card card-loading" aria-busy="true">Loading the job…</div>}>
        <Match when={job.error as unknown}>{(err) => <ErrorPanel title="Could not load the job" error={err()} onRetry={() => void refetch()} />}</Match>
        <Match when={job()}>{(j) => <Builder id={j().id} version={j().version} initial={fromDefinition(j())} />}</Match>
      </Switch>
    </Show>
  )
}

type Tab = 'form' | 'json'

function Builder(props: { id?: string; version?: number; initial: Draft }) {
  const navigate = useNavigate()
  const [draft, setDraft] = createStore<Draft>(structuredClone(props.initial))
  const [errors, setErrors] = createSignal<Record<string, string>>({})
  const [saveError, setSaveError] = createSignal<unknown>(null)
  const [saving, setSaving] = createSignal(false)
  const [tab, setTab] = createSignal<Tab>('form')
  const [jsonText, setJsonText] = createSignal('')
  const [jsonError, setJsonError] = createSignal<string | null>(null)
  const [message, setMessage] = createSignal('')
  const [dirty, setDirty] = createSignal(false)
  let summaryEl: HTMLDivElement | undefined

  const announce = (text: string) => {
    setMessage('')
    queueMicrotask(() => setMessage(text))
  }
  const changed = () => setDirty(true)

  useBeforeLeave((e) => {
    if (dirty() && !saving() && !e.defaultPrevented && !window.confirm('Leave without saving your changes to this job?')) e.preventDefault()
  })

  const showTab = (next: Tab) => {
    if (next === 'json') {
      setJsonText(prettyJson(toDefinition(unwrap(draft))))
      setJsonError(null)
    } else if (jsonError()) announce('The JSON has an error; the form keeps the last valid definition.')
    setTab(next)
  }

  const onJsonInput = (text: string) => {
    setJsonText(text)
    const parsed = parseDefinitionText(text)
    if (!parsed.ok) return setJsonError(parsed.message)
    setJsonError(null)
    // Steps keep their keys by position, so the form's cards (and their open state) stay put.
    const next = fromDefinition(parsed.value, draft.steps.map((s) => s.key))
    setDraft('job', reconcile(next.job))
    setDraft('steps', reconcile(next.steps, { key: 'key' }))
    changed()
  }

  const save = async (e?: Event) => {
    e?.preventDefault()
    if (saving()) return
    if (tab() === 'json' && jsonError()) {
      setSaveError(new Error(`The JSON view has an error (${jsonError()}); fix it or switch to the form, which keeps the last valid definition.`))
      return
    }
    setSaving(true)
    setSaveError(null)
    try {
      const definition = toDefinition(unwrap(draft))
      const saved = props.id ? await updateJob(props.id, definition) : await createJob(definition)
      setDirty(false)
      navigate(`/jobs/${saved.id}`, { state: { saved: saved.version } })
    } catch (err) {
      setSaveError(err)
      setErrors(fieldErrors(err))
      queueMicrotask(() => summaryEl?.focus())
    } finally {
      setSaving(false)
    }
  }

  const problems = () => Object.entries(errors())
  const goTo = (path: string) => {
    if (tab() !== 'form') showTab('form')
    const id = controlIdFor(path, draft)
    queueMicrotask(() => {
      const el = document.getElementById(id)
      el?.closest('details')?.setAttribute('open', '')
      el?.focus()
      el?.scrollIntoView({ block: 'center' })
    })
  }

  const title = () => (props.id ? `Edit ${typeof draft.job.name === 'string' && draft.job.name ? draft.job.name : 'job'}` : 'New job')
  return (
    <form class="job-builder" onSubmit={save} novalidate aria-label={title()}>
      <PageHeader
        title={title()}
        subtitle={props.id ? `Saving makes version ${(props.version ?? 0) + 1}; runs keep the version they started with.` : 'Steps run in order, on the targets you choose.'}
        actions={
          <>
            <A class="button" href={props.id ? `/jobs/${props.id}` : '/jobs'}>
              Cancel
            </A>
            <Show when={can('operator')}>
              <button type="submit" class="button primary" disabled={saving()}>
                {saving() ? 'Saving…' : 'Save'}
              </button>
            </Show>
          </>
        }
      />
      <div class="visually-hidden" aria-live="polite" data-testid="announcer">
        {message()}
      </div>
      <Show when={saveError()}>
        <div class="save-problems" tabindex="-1" ref={summaryEl}>
          <ErrorPanel title="Could not save the job" error={saveError()} />
          <Show when={problems().length}>
            <ul class="problem-list" aria-label="Problems to fix">
              <For each={problems()}>
                {([path, msg]) => (
                  <li>
                    <button type="button" class="link-button mono" onClick={() => goTo(path)}>
                      {path || '(job)'}
                    </button>
                    : {msg}
                  </li>
                )}
              </For>
            </ul>
          </Show>
        </div>
      </Show>
      <div class="tabs" role="tablist" aria-label="Editor">
        <For each={['form', 'json'] as Tab[]}>
          {(t) => (
            <button
              type="button"
              role="tab"
              id={`tab-${t}`}
              aria-selected={tab() === t}
              aria-controls={`panel-${t}`}
              tabindex={tab() === t ? 0 : -1}
              class="tab"
              onClick={() => showTab(t)}
              onKeyDown={(e) => {
                if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return
                const next: Tab = t === 'form' ? 'json' : 'form'
                showTab(next)
                document.getElementById(`tab-${next}`)?.focus()
              }}
            >
              {t === 'form' ? 'Form' : 'JSON'}
            </button>
          )}
        </For>
      </div>
      <div id="panel-form" role="tabpanel" aria-labelledby="tab-form" hidden={tab() !== 'form'}>
        <BuilderForm draft={draft} setDraft={setDraft} errors={errors()} setErrors={setErrors} announce={announce} onChange={changed} excludeJobId={props.id} />
      </div>
      <div id="panel-json" role="tabpanel" aria-labelledby="tab-json" hidden={tab() !== 'json'}>
        <div class="field json-field" classList={{ invalid: !!jsonError() }}>
          <label for="job-json">Job definition (JSON)</label>
          <textarea id="job-json" class="json-editor" spellcheck={false} value={jsonText()} aria-invalid={jsonError() ? 'true' : undefined} aria-describedby="job-json-note" onInput={(e) => onJsonInput(e.currentTarget.value)} />
          <p id="job-json-note" class={jsonError() ? 'field-error' : 'hint'} aria-live="polite">
            {jsonError() ? `Invalid JSON: ${jsonError()}. The form keeps the last valid definition.` : 'Edits here update the form; the form’s edits show here. Save sends this definition.'}
          </p>
        </div>
      </div>
    </form>
  )
}

/** The id of the control a server error path names, so the summary can jump to it. */
function controlIdFor(path: string, draft: Draft): string {
  const step = /^steps\[(\d+)\](?:\.([A-Za-z_][A-Za-z0-9_]*))?/.exec(path)
  if (step) {
    const key = draft.steps[Number(step[1])]?.key
    if (!key) return 'f-job-steps'
    return step[2] && document.getElementById(fieldId(key, step[2])) ? fieldId(key, step[2]) : `step-title-${key}`
  }
  const param = /^parameters\[(\d+)\]\.([A-Za-z_]+)/.exec(path)
  if (param) return `f-param-${param[1]}-${param[2]}`
  const dep = /^triggered_by\[(\d+)\]\.([A-Za-z_]+)/.exec(path)
  if (dep) return `f-dep-${dep[1]}-${dep[2]}`
  const [first, second] = path.split(/[.[]/)
  if ((first === 'fan_out' || first === 'retry') && second) return `f-job-${first}-${second}`
  return `f-job-${first || 'name'}`
}

