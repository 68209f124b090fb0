import { createResource, Match, Show, Switch } from 'solid-js'
import { api, unwrap, type Ok } from '../../api.ts'
import { Badge } from '../../components/badge.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { formatDateTime } from '../../components/format.ts'
import { Time } from '../../components/time.tsx'
import { actorLabel, type AuditEvent } from './audit-page.tsx'

type Verify = Ok<Awaited<ReturnType<typeof api.audit.verify.$get>>>

const CHAIN_TONE = { checking: 'neutral', verified: 'good', broken: 'bad', error: 'neutral' } as const

/**
 * The hash chain checked end to end by the controller (GET /audit/verify): verified, or the first
 * entry that does not check out — edited, or next to a deleted one — named with what it claims.
 */
export function ChainStatus(props: { onShow: (entry: AuditEvent) => void }) {
  const [result, { refetch }] = createResource(() => unwrap(api.audit.verify.$get(), 'GET /audit/verify'))
  const status = () => (result.loading ? 'checking' : result.error ? 'error' : result()?.ok ? 'verified' : 'broken')
  return (
    <section class="card chain-status" aria-labelledby="chain-title" aria-busy={result.loading} data-status={status()}>
      <div class="chain-head">
        <h2 id="chain-title">Hash chain</h2>
        <Badge large tone={CHAIN_TONE[status()]} data-testid="chain-badge" data-status={status()} role="status">
          {{ checking: 'Checking…', verified: 'Verified', broken: 'Broken', error: 'Unknown' }[status()]}
        </Badge>
        <button type="button" class="button small chain-again" disabled={result.loading} onClick={() => void refetch()}>
          {result.loading ? 'Verifying…' : 'Verify again'}
        </button>
      </div>
      <Switch>
        <Match when={result.error as unknown}>{(err) => <ErrorPanel title="Could not verify the audit chain" error={err()} onRetry={() => void refetch()} />}</Match>
        <Match when={!result.loading && result()} keyed>
          {(r) => <Outcome result={r} onShow={props.onShow} />}
        </Match>
        <Match when={result.loading}>
          <p class="chain-text muted">Walking every entry and checking its hash…</p>
        </Match>
      </Switch>
    </section>
  )
}

function Outcome(props: { result: Verify; onShow: (entry: AuditEvent) => void }) {
  const n = (count: number) => `${count.toLocaleString()} ${count === 1 ? 'entry' : 'entries'}`
  return (
    <Show
      when={props.result.broken}
      fallback={
        <p class="chain-text">
          All {n(props.result.entries_checked)} check out · checked <Time iso={props.result.checked_at} mode="absolute" />
          <Show when={props.result.head}>
            {(head) => (
              <>
                {' · '}head <span class="mono chain-hash" title={head()}>{head().slice(0, 16)}…</span>
              </>
            )}
          </Show>
        </p>
      }
    >
      {(broken) => (
        <div class="chain-broken">
          <p class="chain-text" data-testid="chain-broken">
            <strong>
              Entry #{broken().id} {broken().message}
            </strong>
            <Show when={broken().entry}>
              {(e) => (
                <>
                  {' '}
                  — it says <span class="mono">{e().action}</span> by {actorLabel(e().actor)} at {formatDateTime(e().at)}.
                </>
              )}
            </Show>{' '}
            {n(props.result.entries_checked)} before it verified; nothing after it can be trusted until this is explained. Checked <Time iso={props.result.checked_at} mode="absolute" />.
          </p>
          <Show when={broken().entry}>
            {(e) => (
              <button type="button" class="button small" aria-haspopup="dialog" onClick={() => props.onShow(e())}>
                Show entry #{broken().id}
              </button>
            )}
          </Show>
        </div>
      )}
    </Show>
  )
}
