import { A, useLocation, useNavigate, useParams } from '@solidjs/router'
import { createResource, createSignal, For, Show } from 'solid-js'
import { Badge, toneOf, words } from '../../components/badge.tsx'
import { ConfirmButton } from '../../components/dialog.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { EmptyState, Loaded } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { Time } from '../../components/time.tsx'
import { can } from '../../session.ts'
import { downloadJson, exportOne, fileNameOf, getJob, recentRuns, removeJob, type Job } from './jobs-api.ts'
import { RunDialog } from './run-dialog.tsx'
import { stepTypeInfo } from './step-types.ts'
import { Versions } from './versions.tsx'
import './jobs.css'

/* /jobs/:id — what the job does, its versions and recent runs; Run, Edit, Export and Delete. */

export function JobPage() {
  const params = useParams<{ id: string }>()
  const [job, { refetch }] = createResource(() => params.id, getJob)
  return (
    <Loaded resource={job} what="the job" onRetry={() => void refetch()} keyed={false} header={<PageHeader title="Job" />}>
      {(j) => <JobView job={j()} />}
    </Loaded>
  )
}

function JobView(props: { job: Job }) {
  const navigate = useNavigate()
  const location = useLocation<{ saved?: number }>()
  const [running, setRunning] = createSignal(false)
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
              <ConfirmButton
                label="Delete"
                title={`Delete ${j().name}?`}
                confirmLabel="Delete job"
                danger
                errorTitle="Could not delete the job"
                action={async () => {
                  await removeJob(j().id)
                  navigate('/jobs', { replace: true })
                }}
              >
                <p>The job disappears from lists and its name is freed. Its runs and versions stay readable.</p>
              </ConfirmButton>
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
              v{j().version} <span class="hint">saved <Time iso={j().updated_at} /> by {j().updated_by ?? 'unknown'}</span>
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
        <Loaded resource={runs} what="recent runs" onRetry={() => void refetchRuns()} keyed={false}>
          {(page) => (
            <Show when={page().items.length} fallback={<EmptyState title="No runs yet" />}>
              <ul class="run-summary">
                <For each={page().items}>
                  {(r) => (
                    <li>
                      <A href={`/runs/${r.id}`}>
                        <Badge large tone={toneOf(r.status)}>
                          {words(r.status)}
                        </Badge>
                      </A>{' '}
                      <span class="hint">
                        v{r.job_version} · {r.trigger} by {r.requested_by ?? 'system'} · <Time iso={r.created_at} />
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
      <Show when={running()}>
        <RunDialog job={j()} onClose={() => setRunning(false)} />
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
