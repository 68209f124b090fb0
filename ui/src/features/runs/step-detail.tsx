import { createEffect, createResource, on, Show } from 'solid-js'
import { api, unwrap } from '../../api.ts'
import { Badge } from '../../components/badge.tsx'
import { formatDateTime } from '../../components/format.ts'
import { Loaded } from '../../components/loaded.tsx'
import type { RunLive } from './run-live.ts'
import { formatDuration, statusLabel, statusTone } from './status.ts'

interface Props {
  runId: string
  stepRunId: string
  live: RunLive
}

/** The facts of the selected step run, read again whenever its status changes. */
export function StepDetail(props: Props) {
  const [step, { refetch }] = createResource(
    () => props.stepRunId,
    (stepRunId) => unwrap(api.runs[':id'].steps[':stepRunId'].$get({ param: { id: props.runId, stepRunId } }), 'GET /runs/:id/steps/:stepRunId'),
  )
  const liveStatus = () => {
    props.live.gridRev()
    return props.live.grid.byId.get(props.stepRunId)?.status
  }
  createEffect(on(liveStatus, (now, before) => before !== undefined && now !== before && void refetch(), { defer: true }))

  return (
    <section class="card step-detail" aria-labelledby="step-detail-heading">
      <h2 id="step-detail-heading">Selected step</h2>
      <Loaded resource={step} what="the step" onRetry={() => void refetch()}>
        {(s) => (
          <dl class="facts">
            <dt>Step</dt>
            <dd>
              {s.step_id} <span class="muted">({s.step_type})</span>
            </dd>
            <dt>Target</dt>
            <dd>{s.target_name ?? 'controller'}</dd>
            <dt>Status</dt>
            <dd>
              <Badge tone={statusTone(s.status)}>{statusLabel(s.status)}</Badge>
            </dd>
            <dt>Attempt</dt>
            <dd>{s.attempt}</dd>
            <dt>Transport</dt>
            <dd>{s.transport}</dd>
            <Show when={s.exit_code !== null || s.signal}>
              <dt>Exit</dt>
              <dd>{s.signal ? `signal ${s.signal}` : `code ${s.exit_code}`}</dd>
            </Show>
            <dt>Started</dt>
            <dd>{formatDateTime(s.started_at)}</dd>
            <dt>Duration</dt>
            <dd>{formatDuration(s.duration_ms)}</dd>
            <Show when={s.truncated}>
              <dt>Output</dt>
              <dd>truncated at {s.output_bytes} bytes (the per-step cap)</dd>
            </Show>
            <Show when={s.error}>
              <dt>Error</dt>
              <dd class="step-error">{s.error}</dd>
            </Show>
          </dl>
        )}
      </Loaded>
    </section>
  )
}
