import { A, useParams, useSearchParams } from '@solidjs/router'
import { createEffect, createResource, createSignal, For, Match, on, onCleanup, Show, Switch } from 'solid-js'
import { api, unwrap, type Ok } from '../../api.ts'
import { Badge } from '../../components/badge.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { formatDateTime } from '../../components/format.ts'
import { PageHeader } from '../../components/page-header.tsx'
import { LogViewer } from './log-viewer.tsx'
import { RunActions } from './run-actions.tsx'
import { createRunLive } from './run-live.ts'
import { formatDuration, isActive, runDuration, shortId, statusLabel, statusTone, triggerLabel, type RunStatus } from './status.ts'
import { StepDetail } from './step-detail.tsx'
import { StepGrid } from './step-grid.tsx'
import './runs.css'

export type RunDetail = Ok<Awaited<ReturnType<(typeof api.runs)[':id']['$get']>>>

/** `/runs/:id`: a run's header, its step × target grid and its live output. */
export function RunPage() {
  const params = useParams()
  // Keyed: another run id is another page (its own stream, store and grid).
  return (
    <Show when={params.id} keyed>
      {(id) => <RunView runId={id} />}
    </Show>
  )
}

function RunView(props: { runId: string }) {
  const live = createRunLive(props.runId)
  const [search, setSearch] = useSearchParams()
  const selected = () => (typeof search.step === 'string' && search.step ? search.step : null)
  const select = (id: string | null) => setSearch({ step: id ?? undefined }, { replace: true })
  const [run, { refetch }] = createResource(() => unwrap(api.runs[':id'].$get({ param: { id: props.runId } }), 'GET /runs/:id'))
  // The last run read: kept through a failed refresh (reading an errored resource throws).
  const [data, setData] = createSignal<RunDetail>()
  createEffect(() => run.state === 'ready' && setData(run()))
  const status = (): RunStatus | undefined => live.status() ?? data()?.status

  // Read the run again when its status changes, and now and then while its steps move (counts, timings).
  createEffect(on(live.status, (s) => s && data() && s !== data()!.status && void refetch(), { defer: true }))
  let countsTimer: ReturnType<typeof setTimeout> | undefined
  createEffect(
    on(
      live.gridRev,
      () => {
        if (countsTimer || !data()) return
        countsTimer = setTimeout(() => {
          countsTimer = undefined
          void refetch()
        }, 2000)
      },
      { defer: true },
    ),
  )
  onCleanup(() => clearTimeout(countsTimer))
  createEffect(() => {
    const targets = data()?.targets
    if (targets) live.setTargets(targets.map((t) => t.name))
  })

  const [now, setNow] = createSignal(Date.now())
  const tick = setInterval(() => isActive(status()) && setNow(Date.now()), 1000)
  onCleanup(() => clearInterval(tick))

  return (
    <div class="run-page">
      <Switch fallback={<div class="card card-loading" aria-busy="true">Loading the run…</div>}>
        <Match when={data()}>
          <PageHeader
            title={data()!.job_name}
            subtitle={`Run ${data()!.id}`}
            actions={<RunActions runId={props.runId} status={status()!} onCancelled={() => void refetch()} />}
          />
          <Show when={run.error as unknown}>{(err) => <ErrorPanel title="Could not refresh the run" error={err()} onRetry={() => void refetch()} />}</Show>
          <RunFacts run={data()!} status={status()!} now={now()} />
          <StepGrid live={live} selected={selected()} onSelect={(id) => select(selected() === id ? null : id)} />
          <Show when={selected()} keyed>
            {(id) => <StepDetail runId={props.runId} stepRunId={id} live={live} />}
          </Show>
          <LogViewer live={live} runId={props.runId} selected={selected()} onClearSelection={() => select(null)} />
        </Match>
        <Match when={run.error as unknown}>{(err) => <ErrorPanel title="Could not load the run" error={err()} onRetry={() => void refetch()} />}</Match>
      </Switch>
    </div>
  )
}

function RunFacts(props: { run: RunDetail; status: RunStatus; now: number }) {
  const r = () => props.run
  const counts = () =>
    Object.entries(r().target_counts)
      .filter(([, n]) => n > 0)
      .map(([s, n]) => `${n} ${statusLabel(s as RunStatus)}`)
      .join(', ')
  const params = () => Object.entries(r().parameters ?? {})
  return (
    <section class="card run-facts" aria-label="Run details">
      <div class="run-status-line">
        <Badge large tone={statusTone(props.status)} data-testid="run-status">
          {statusLabel(props.status)}
        </Badge>
        <Show when={r().waiting_for}>{(w) => <span class="hint">waiting for {w() === 'target_lock' ? 'a target lock' : 'a free slot (job concurrency)'}</span>}</Show>
        <Show when={r().cancel_requested_at && isActive(props.status)}>
          <span class="hint">cancel requested by {r().cancel_requested_by ?? 'someone'}</span>
        </Show>
      </div>
      <dl class="facts run-facts-grid">
        <dt>Job</dt>
        <dd>
          <A href={`/jobs/${r().job_id}`}>{r().job_name}</A> <span class="muted">version {r().job_version}</span>
        </dd>
        <dt>Trigger</dt>
        <dd>
          {triggerLabel(r().trigger)}
          <Show when={r().retry_of}>
            {(id) => (
              <>
                {' of '}
                <A href={`/runs/${id()}`}>run {shortId(id())}</A>
              </>
            )}
          </Show>
          <Show when={r().triggered_by_run}>
            {(id) => (
              <>
                {' by '}
                <A href={`/runs/${id()}`}>run {shortId(id())}</A>
              </>
            )}
          </Show>
        </dd>
        <dt>Requested by</dt>
        <dd>{r().requested_by ?? '—'}</dd>
        <dt>Targets</dt>
        <dd>
          {r().target_count}
          <Show when={counts()}> ({counts()})</Show>
        </dd>
        <dt>Created</dt>
        <dd>{formatDateTime(r().created_at)}</dd>
        <dt>Started</dt>
        <dd>{formatDateTime(r().started_at)}</dd>
        <dt>Finished</dt>
        <dd>{formatDateTime(r().finished_at)}</dd>
        <dt>Duration</dt>
        <dd>{formatDuration(runDuration(r(), props.now))}</dd>
        <Show when={r().cancel_requested_at}>
          <dt>Cancelled by</dt>
          <dd>
            {r().cancel_requested_by ?? '—'} at {formatDateTime(r().cancel_requested_at)}
          </dd>
        </Show>
        <Show when={params().length > 0}>
          <dt>Parameters</dt>
          <dd>
            <ul class="run-params">
              <For each={params()}>
                {([k, v]) => (
                  <li>
                    <code>{k}</code> = <code>{typeof v === 'string' ? v : JSON.stringify(v)}</code>
                  </li>
                )}
              </For>
            </ul>
          </dd>
        </Show>
        <Show when={r().error}>
          <dt>Error</dt>
          <dd class="step-error">{r().error}</dd>
        </Show>
      </dl>
    </section>
  )
}
