import { A, useLocation, useNavigate, useParams } from '@solidjs/router'
import { createResource, createSignal, For, Match, Show, Switch } from 'solid-js'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { EmptyState, Loaded } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { can } from '../../session.ts'
import { Dialog } from './dialog.tsx'
import { downloadJson, exportOne, fileNameOf, getJob, recentRuns, removeJob, type Job } from './jobs-api.ts'
import { ago, runTone, statusLabel } from './model.ts'
import { RunDialog } from './run-dialog.tsx'
import { stepTypeInfo } from './step-types.ts'
import { Versions } from './versions.tsx'
import './jobs.css'

/* /jobs/:id — what the job does, its versions and recent runs; Run, Edit, Export and Delete. */

export function JobPage() {
  const params = useParams<{ id: string }>()
  const [job, { refetch }] = createResource(() => params.id, getJob)
  return (
    <Switch fallback={<div class="card card-loading" aria-busy="true">Loading the job…</div>}>
      <Match when={job.error as unknown}>
        {(err) => (
          <>
            <PageHeader title="Job" />
            <ErrorPanel title="Could not load the job" error={err()} onRetry={() => void refetch()} />
          </>
        )}
      </Match>
      <Match when={job.latest}>{(j) => <JobView job={j()} />}</Match>
    </Switch>
  )
}

function JobView(props: { job: Job }) {
  const navigate = useNavigate()
  const location = useLocation<{ saved?: number }>()
  const [running, setRunning] = createSignal(false)
  const [confirmDelete, setConfirmDelete] = createSignal(false)
  const [actionError, setActionError] = createSignal<unknown>(null)
  const [runs, { refetch: refetchRuns }] = createResource(() => props.job.id, recentRuns)
  const j = () => props.job

  const doExport = async () => {
    setActionError(null)
    try {
      downloadJson(fileNameOf(j().name), await exportOne(j().id))
    } catch (err) {
      setActionError(err)
    }
  }
  const doDelete = async () => {
    setActionError(null)
    try {
      await removeJob(j().id)
      navigate('/jobs', { replace: true })
    } catch (err) {
      setConfirmDelete(false)
      setActionError(err)
    }
  }

  return (
    <section class="job-page">
      <PageHeader
        title={j().name}
        subtitle={j().description ?? undefined}
        actions={
          <>
            <button type="button" class="button" onClick={() => void doExport()}>
              Export
            </button>
            <Show when={can('operator')}>
              <button type="button" class="button danger" onClick={() => setConfirmDelete(true)}>
                Delete
              </button>
              <A class="button" href={`/jobs/${j().id}/edit`}>
                Edit
              </A>
              <button type="button" class="button primary" onClick={() => setRunning(true)}>
                Run
              </button>
            </Show>
          </>
        }
      />
      <Show when={location.state?.saved}>
        {(v) => (
          <p class="notice" role="status">
            Saved as version {v()}.
          </p>
        )}
      </Show>
      <Show when={actionError()}>
        <ErrorPanel title="That did not work" error={actionError()} />
      </Show>
      <div class="job-grid">
        <section class="card" aria-labelledby="summary-title">
          <h2 id="summary-title">Summary</h2>
          <dl class="facts">
            <dt>Version</dt>
            <dd>
              v{j().version} <span class="hint">saved {ago(j().updated_at)} by {j().updated_by ?? 'unknown'}</span>
            </dd>
            <dt>Targets</dt>
            <dd class="mono">{j().targets ?? 'named by each run'}</dd>
            <dt>Enabled</dt>
            <dd>{j().enabled ? 'yes' : 'no (schedules and triggers skip it)'}</dd>
            <dt>Fan-out</dt>
            <dd>
              {j().fan_out.max_parallel} targets at once, {j().fan_out.strategy === 'per_target' ? 'per target' : 'step by step'}
            </dd>
            <Show when={j().timeout_sec}>
              <dt>Timeout</dt>
              <dd>{j().timeout_sec} s</dd>
            </Show>
            <Show when={j().tags.length}>
              <dt>Tags</dt>
              <dd>
                <For each={j().tags}>{(t) => <span class="tag">{t}</span>}</For>
              </dd>
            </Show>
            <Show when={j().triggered_by?.length}>
              <dt>Triggered by</dt>
              <dd>
                <For each={j().triggered_by ?? []}>
                  {(d) => (
                    <span class="dep">
                      <A href={`/jobs/${d.job}`}>upstream job</A> on {d.on}
                    </span>
                  )}
                </For>
              </dd>
            </Show>
          </dl>
        </section>
        <section class="card" aria-labelledby="params-title">
          <h2 id="params-title">Parameters</h2>
          <Show when={j().parameters.length} fallback={<p class="hint">None.</p>}>
            <ul class="param-summary">
              <For each={j().parameters}>
                {(p) => (
                  <li>
                    <span class="mono">{p.name}</span> <span class="hint">{p.type}{p.required ? ', required' : ''}{p.default !== undefined ? `, default ${String(p.default)}` : ''}</span>
                  </li>
                )}
              </For>
            </ul>
          </Show>
        </section>
      </div>
      <section class="card" aria-labelledby="steps-title">
        <h2 id="steps-title">Steps</h2>
        <ol class="step-summary">
          <For each={j().steps}>
            {(s) => (
              <li>
                <span class="step-name">{s.name}</span> <span class="mono step-type">{s.type}</span>
                <span class="hint"> {stepSummary(s)}</span>
              </li>
            )}
          </For>
        </ol>
      </section>
      <section class="card" aria-labelledby="runs-title">
        <h2 id="runs-title">Recent runs</h2>
        <Loaded resource={runs} what="recent runs" onRetry={() => void refetchRuns()}>
          {(first) => (
            <Show when={(runs.error ? first : (runs.latest ?? first)).items.length} fallback={<EmptyState title="No runs yet" />}>
              <ul class="run-summary">
                <For each={(runs.error ? first : (runs.latest ?? first)).items}>
                  {(r) => (
                    <li>
                      <A href={`/runs/${r.id}`}>
                        <span class={`badge tone-${runTone(r.status)}`}>{statusLabel(r.status)}</span>
                      </A>{' '}
                      <span class="hint">
                        v{r.job_version} · {r.trigger} by {r.requested_by ?? 'system'} · {ago(r.created_at)}
                      </span>
                    </li>
                  )}
                </For>
              </ul>
            </Show>
          )}
        </Loaded>
      </section>
      <Versions jobId={j().id} latest={j().latest_version} />
      <Show when={can('operator')}>
        <RunDialog job={j()} open={running()} onClose={() => setRunning(false)} />
        <Dialog
          open={confirmDelete()}
          title={`Delete ${j().name}?`}
          onClose={() => setConfirmDelete(false)}
          footer={
            <>
              <button type="button" class="button" onClick={() => setConfirmDelete(false)}>
                Keep the job
              </button>
              <button type="button" class="button danger" onClick={() => void doDelete()}>
                Delete job
              </button>
            </>
          }
        >
          <p>The job disappears from lists and its name is freed. Its runs and versions stay readable.</p>
        </Dialog>
      </Show>
    </section>
  )
}

function stepSummary(s: Job['steps'][number]): string {
  const key = ['command', 'url', 'destination', 'source', 'query', 'script', 'seconds', 'oid'].find((k) => s[k] !== undefined)
  const value = key ? s[key] : undefined
  const text = key === 'seconds' ? `${String(value)} s` : typeof value === 'string' ? value.split('\n')[0]! : ''
  const target = s.target ? ` on ${s.target}` : ''
  const what = text ? (text.length > 80 ? `${text.slice(0, 80)}…` : text) : (stepTypeInfo(s.type)?.label ?? '')
  return `${what}${target}`
}
