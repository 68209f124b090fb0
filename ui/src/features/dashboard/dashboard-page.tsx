import { createResource, createSignal, For, Match, onCleanup, Switch, type JSX, type Resource } from 'solid-js'
import { getReadiness, getVersion, type ReadinessReport, type VersionInfo } from '../../api.ts'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { Loaded } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { databaseLabel, formatUptime, readinessView } from './status.ts'

const READINESS_POLL_MS = 15_000

export function DashboardPage() {
  const [version, { refetch: refetchVersion }] = createResource(() => getVersion())
  const [readiness, { refetch: refetchReadiness }] = createResource(() => getReadiness())
  const [now, setNow] = createSignal(new Date())
  const clock = setInterval(() => setNow(new Date()), 1_000)
  const poll = setInterval(() => void refetchReadiness(), READINESS_POLL_MS)
  onCleanup(() => {
    clearInterval(clock)
    clearInterval(poll)
  })
  const refresh = () => {
    void refetchVersion()
    void refetchReadiness()
  }

  return (
    <section class="dashboard">
      <PageHeader
        title="Dashboard"
        subtitle="Health of the controller you are connected to."
        actions={
          <button type="button" class="button" onClick={refresh} disabled={version.loading || readiness.loading}>
            Refresh
          </button>
        }
      />
      <div class="card-grid">
        <Loaded resource={readiness} what="readiness" onRetry={() => void refetchReadiness()}>
          {(report) => <ReadinessCard report={report} />}
        </Loaded>
        <Loaded resource={version} what="controller version" onRetry={() => void refetchVersion()}>
          {(info) => <ControllerCard info={info} now={now()} />}
        </Loaded>
        <Loaded resource={version} what="database backend" onRetry={() => void refetchVersion()}>
          {(info) => <DatabaseCard info={info} />}
        </Loaded>
      </div>
    </section>
  )
}


function ReadinessCard(props: { report: ReadinessReport }) {
  const view = () => readinessView(props.report)
  return (
    <article class="card" data-testid="readiness">
      <h2>Readiness</h2>
      <p>
        <span class={`badge tone-${view().tone}`} data-status={props.report.status}>
          {view().label}
        </span>
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
    </article>
  )
}

function ControllerCard(props: { info: VersionInfo; now: Date }) {
  return (
    <article class="card" data-testid="controller">
      <h2>Controller</h2>
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
    </article>
  )
}

function DatabaseCard(props: { info: VersionInfo }) {
  return (
    <article class="card" data-testid="database">
      <h2>Database</h2>
      <dl class="facts">
        <dt>Backend</dt>
        <dd data-testid="database-backend">{databaseLabel(props.info.database)}</dd>
        <dt>Installation</dt>
        <dd class="mono id" title={props.info.installation_id}>
          {props.info.installation_id}
        </dd>
      </dl>
      {props.info.database === 'pglite' && (
        <p class="hint">Embedded database for a single controller. Set DATABASE_URL to use PostgreSQL in production.</p>
      )}
    </article>
  )
}
