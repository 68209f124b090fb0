import { A } from '@solidjs/router'
import { For, Show, type Accessor, type JSX } from 'solid-js'
import { getReadiness, getVersion, type ReadinessReport, type VersionInfo } from '../../api.ts'
import { Badge } from '../../components/badge.tsx'
import { formatDateTime, relativeTime } from '../../components/format.ts'
import { EmptyState } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { useNow } from '../../components/time.tsx'
import { can } from '../../session.ts'
import { getAgentCounts, type AgentCounts } from '../agents/agents-api.ts'
import { percent } from '../agents/format.ts'
import { createPolled, Live, type Polled } from '../agents/live.tsx'
import { getActiveRuns, getEnabledSchedules, getFailingJobs, getRunStats, type ActiveRunsDto, type FailingJobsDto, type RunStatsDto } from './dashboard-api.ts'
import { databaseLabel, formatUptime, nextFires, readinessView, runStatusView, statusBars } from './status.ts'
import './dashboard.css'

/** Refresh cadence per card: live progress often, aggregates and health less, the calendar rarely. */
const POLL = { active: 3_000, stats: 15_000, failing: 15_000, agents: 10_000, schedules: 30_000, readiness: 15_000, version: 60_000 }
const LIST = 8

export function DashboardPage() {
  const stats = createPolled(getRunStats, POLL.stats)
  const active = createPolled(getActiveRuns, POLL.active)
  const failing = createPolled(getFailingJobs, POLL.failing)
  const schedules = createPolled(getEnabledSchedules, POLL.schedules)
  const readiness = createPolled(getReadiness, POLL.readiness)
  const version = createPolled(getVersion, POLL.version)
  // Viewers cannot read agents (the API says 403): their dashboard neither asks nor shows the card.
  const agents = can('operator') ? createPolled(getAgentCounts, POLL.agents) : undefined
  const all: Polled<unknown>[] = [stats, active, failing, schedules, readiness, version, ...(agents ? [agents] : [])]
  const now = useNow()

  return (
    <section class="dashboard">
      <PageHeader
        title="Dashboard"
        subtitle="What is running, what failed, and how this controller is doing. Refreshes on its own."
        actions={
          <button type="button" class="button" onClick={() => all.forEach((p) => p.refresh())}>
            Refresh
          </button>
        }
      />
      <div class="dash-grid">
        <DashCard title="Runs, last 24 hours" testId="run-stats" polled={stats} what="run statistics" class="span-2">
          {(s) => <RunStatsView stats={s()} />}
        </DashCard>
        <DashCard title="Running now" testId="active-runs" polled={active} what="running runs">
          {(a) => <ActiveRunsView active={a()} now={now()} />}
        </DashCard>
        <DashCard title="Failing jobs" testId="failing-jobs" polled={failing} what="failing jobs">
          {(f) => <FailingJobsView failing={f()} now={now()} />}
        </DashCard>
        <Show when={agents}>
          {(polled) => (
            <DashCard title="Agents" testId="agent-summary" polled={polled()} what="agent counts">
              {(c) => <AgentCountsView counts={c()} />}
            </DashCard>
          )}
        </Show>
        <DashCard title="Next scheduled runs" testId="next-fires" polled={schedules} what="schedules">
          {(page) => <NextFiresView items={page().items} now={now()} />}
        </DashCard>
        <DashCard title="Readiness" testId="readiness" polled={readiness} what="readiness">
          {(r) => <ReadinessView report={r()} />}
        </DashCard>
        <DashCard title="Controller" testId="controller" polled={version} what="controller version">
          {(v) => <ControllerView info={v()} now={new Date(now())} />}
        </DashCard>
        <DashCard title="Database" testId="database" polled={version} what="database backend">
          {(v) => <DatabaseView info={v()} />}
        </DashCard>
      </div>
    </section>
  )
}

/** A card with its own loading and error state: one failing endpoint leaves the others working. */
function DashCard<T>(props: { title: string; testId: string; polled: Polled<T>; what: string; class?: string; children: (value: Accessor<NonNullable<T>>) => JSX.Element }) {
  const headingId = `dash-${props.testId}`
  return (
    <article class={`card dash-card ${props.class ?? ''}`} data-testid={props.testId} aria-labelledby={headingId}>
      <h2 id={headingId}>{props.title}</h2>
      <Live
        polled={props.polled}
        what={props.what}
        loading={
          <p class="dash-loading" aria-busy="true">
            Loading…
          </p>
        }
      >
        {props.children}
      </Live>
    </article>
  )
}

function RunStatsView(props: { stats: RunStatsDto }) {
  const bars = () => statusBars(props.stats.by_status)
  const peak = () => Math.max(1, ...props.stats.hourly.map((h) => h.total))
  const busiest = () => props.stats.hourly.reduce((a, b) => (b.total > a.total ? b : a), props.stats.hourly[0]!)
  const hour = (iso: string) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
  return (
    <div class="run-stats">
      <div class="run-stats-total">
        <span class="big-number" data-testid="runs-total">
          {props.stats.total}
        </span>
        <span class="hint">{props.stats.total === 1 ? 'run' : 'runs'} started</span>
      </div>
      <ul class="status-bars" aria-label="Runs by status">
        <For each={bars()}>
          {(bar) => (
            <li data-status={bar.status}>
              <A class="bar-label" href={`/runs?status=${bar.status}`}>
                {bar.label}
              </A>
              <span class="bar-track" aria-hidden="true">
                <span class={`bar-fill fill-${bar.tone}`} style={{ width: `${bar.width}%` }} />
              </span>
              <span class="bar-count" data-testid={`count-${bar.status}`}>
                {bar.count}
              </span>
            </li>
          )}
        </For>
      </ul>
      <figure class="hourly">
        <div
          class="hourly-chart"
          role="img"
          aria-label={
            props.stats.total === 0
              ? 'No runs in the last 24 hours'
              : `Runs per hour over the last 24 hours; the busiest hour, from ${hour(busiest().start)}, had ${busiest().total} (${busiest().failed} failed)`
          }
        >
          <For each={props.stats.hourly}>
            {(h) => (
              <span class="hour" title={`${hour(h.start)}: ${h.total} runs, ${h.succeeded} succeeded, ${h.failed} failed`}>
                <span class="hour-stack" style={{ height: `${(h.total / peak()) * 100}%` }}>
                  <span class="seg fill-bad" style={{ 'flex-grow': h.failed }} />
                  <span class="seg fill-neutral" style={{ 'flex-grow': h.other }} />
                  <span class="seg fill-good" style={{ 'flex-grow': h.succeeded }} />
                </span>
              </span>
            )}
          </For>
        </div>
        <figcaption class="hourly-axis">
          <span>24 h ago</span>
          <span class="legend">
            <span class="swatch fill-good" aria-hidden="true" /> succeeded <span class="swatch fill-bad" aria-hidden="true" /> failed <span class="swatch fill-neutral" aria-hidden="true" /> other
          </span>
          <span>now</span>
        </figcaption>
      </figure>
    </div>
  )
}

function ActiveRunsView(props: { active: ActiveRunsDto; now: number }) {
  return (
    <>
      <p class="dash-summary">
        <span data-testid="running-count">{props.active.running}</span> running · <span data-testid="queued-count">{props.active.queued}</span> queued
      </p>
      <Show when={props.active.items.length > 0} fallback={<p class="hint">Nothing is running right now.</p>}>
        <ul class="active-runs">
          <For each={props.active.items}>
            {(r) => (
              <li data-run-id={r.id}>
                <div class="run-line">
                  <A href={`/runs/${r.id}`}>{r.job_name}</A>
                  <span class="hint">
                    {r.status === 'queued'
                      ? `queued ${relativeTime(r.created_at, props.now)}${r.waiting_for ? ` (waiting: ${r.waiting_for.replace('_', ' ')})` : ''}`
                      : `started ${relativeTime(r.started_at, props.now)}`}
                  </span>
                </div>
                <div
                  class="progress"
                  role="progressbar"
                  aria-label={`${r.job_name} progress`}
                  aria-valuemin={0}
                  aria-valuemax={Math.max(1, r.steps_total)}
                  aria-valuenow={r.steps_done}
                  aria-valuetext={`${r.steps_done} of ${r.steps_total} steps done`}
                >
                  <span class="progress-done" style={{ width: `${percent(r.steps_done - r.steps_failed, r.steps_total)}%` }} />
                  <span class="progress-failed" style={{ width: `${percent(r.steps_failed, r.steps_total)}%` }} />
                </div>
                <div class="run-meta">
                  <span data-testid="run-progress">
                    {r.steps_done} / {r.steps_total} steps
                  </span>
                  <Show when={r.steps_failed > 0}>
                    <span class="text-bad"> · {r.steps_failed} failed</span>
                  </Show>
                  <Show when={r.target_count > 0}>
                    <span> · {r.target_count === 1 ? '1 target' : `${r.target_count} targets`}</span>
                  </Show>
                </div>
              </li>
            )}
          </For>
        </ul>
        <Show when={props.active.running + props.active.queued > props.active.items.length}>
          <A href="/runs?status=running" class="more-link">
            All active runs
          </A>
        </Show>
      </Show>
    </>
  )
}

function FailingJobsView(props: { failing: FailingJobsDto; now: number }) {
  return (
    <Show when={props.failing.total > 0} fallback={<p class="hint all-good">No job's latest run failed.</p>}>
      <p class="dash-summary">
        <span data-testid="failing-count" class="text-bad">
          {props.failing.total}
        </span>{' '}
        {props.failing.total === 1 ? 'job whose latest run failed' : 'jobs whose latest run failed'}
      </p>
      <ul class="failing-jobs">
        <For each={props.failing.items}>
          {(j) => (
            <li data-job-id={j.job_id}>
              <div class="run-line">
                <A href={`/jobs/${j.job_id}`}>{j.job_name}</A>
                <Badge tone="bad">{runStatusView(j.status).label}</Badge>
              </div>
              <div class="run-meta">
                <A href={`/runs/${j.run_id}`} title={formatDateTime(j.finished_at)}>
                  Latest run {relativeTime(j.finished_at, props.now)}
                </A>
                <Show when={j.error}>
                  <span class="failure-reason" title={j.error ?? ''}>
                    {' '}
                    · {j.error}
                  </span>
                </Show>
              </div>
            </li>
          )}
        </For>
      </ul>
    </Show>
  )
}

function AgentCountsView(props: { counts: AgentCounts }) {
  return (
    <Show when={props.counts.total > 0} fallback={<EmptyState title="No agents enrolled">{can('admin') ? <A href="/agents/enroll">Enroll an agent</A> : undefined}</EmptyState>}>
      <dl class="agent-numbers">
        <div class="num-good">
          <dt>Online</dt>
          <dd data-testid="agents-online">{props.counts.online}</dd>
        </div>
        <div class="num-bad">
          <dt>Offline</dt>
          <dd data-testid="agents-offline">{props.counts.offline}</dd>
        </div>
        <div>
          <dt>Revoked</dt>
          <dd data-testid="agents-revoked">{props.counts.revoked}</dd>
        </div>
      </dl>
      <p class="dash-links">
        <A href="/agents">All agents</A>
        <Show when={props.counts.offline > 0}>
          <A href="/agents?status=offline">Offline agents</A>
        </Show>
      </p>
    </Show>
  )
}

function NextFiresView(props: { items: Parameters<typeof nextFires>[0]; now: number }) {
  const fires = () => nextFires(props.items, 5)
  return (
    <Show when={fires().length > 0} fallback={<p class="hint">No enabled schedule is due to fire.</p>}>
      <ol class="next-fires">
        <For each={fires()}>
          {(f) => (
            <li>
              <div class="run-line">
                <A href={`/schedules/${f.id}`}>{f.name}</A>
                <time dateTime={f.next_fire_at} title={`${formatDateTime(f.next_fire_at)} (${f.timezone})`}>
                  {relativeTime(f.next_fire_at, props.now)}
                </time>
              </div>
              <Show when={f.job_name}>
                <div class="run-meta">{f.job_name}</div>
              </Show>
            </li>
          )}
        </For>
      </ol>
    </Show>
  )
}

function ReadinessView(props: { report: ReadinessReport }) {
  const view = () => readinessView(props.report)
  return (
    <>
      <p>
        <Badge large tone={view().tone} data-status={props.report.status}>
          {view().label}
        </Badge>
      </p>
      <ul class="checks">
        <For each={view().checks}>
          {(check) => (
            <li class={check.ok ? 'check-ok' : 'check-bad'}>
              <span class="check-dot" aria-hidden="true" />
              <span class="check-name">{check.name}</span>
              <span class="check-detail">{check.detail}</span>
            </li>
          )}
        </For>
      </ul>
    </>
  )
}

function ControllerView(props: { info: VersionInfo; now: Date }) {
  return (
    <dl class="facts">
      <dt>Version</dt>
      <dd data-testid="controller-version">{props.info.version}</dd>
      <dt>Agent protocol</dt>
      <dd>
        v{props.info.protocol.major}.{props.info.protocol.minor}
      </dd>
      <dt>Uptime</dt>
      <dd title={`started ${new Date(props.info.started_at).toLocaleString()}`}>{formatUptime(props.info.started_at, props.now)}</dd>
      <dt>Node</dt>
      <dd class="mono id" title={props.info.node_id}>
        {props.info.node_id}
      </dd>
    </dl>
  )
}

function DatabaseView(props: { info: VersionInfo }) {
  return (
    <>
      <dl class="facts">
        <dt>Backend</dt>
        <dd data-testid="database-backend">{databaseLabel(props.info.database)}</dd>
        <dt>Installation</dt>
        <dd class="mono id" title={props.info.installation_id}>
          {props.info.installation_id}
        </dd>
      </dl>
      <Show when={props.info.database === 'pglite'}>
        <p class="hint">Embedded database for a single controller. Set DATABASE_URL to use PostgreSQL in production.</p>
      </Show>
    </>
  )
}
