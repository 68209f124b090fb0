import { Show } from 'solid-js'
import { Badge } from '../../components/badge.tsx'

/** What a receiver answered to a test send: outcome, HTTP status, its own words, and what the outbox would do. */
export function TestResultCard(props: { result: { ok: boolean; http_status?: number | null; response: string | null; error: string | null; duration_ms: number; permanent: boolean; retry_after_ms?: number | null }; title: string }) {
  const r = () => props.result
  return (
    <section class="test-result" classList={{ ok: r().ok, failed: !r().ok }} aria-label={props.title} role="status">
      <div class="test-result-head">
        <Badge tone={r().ok ? 'good' : 'bad'}>{r().ok ? 'Delivered' : 'Failed'}</Badge>
        <Show when={r().http_status}>{(s) => <span class="mono">HTTP {s()}</span>}</Show>
        <span class="hint">{r().duration_ms} ms</span>
        <Show when={!r().ok}>
          <span class="hint">{r().permanent ? 'The outbox would give up on this answer.' : `The outbox would retry${r().retry_after_ms ? ` after ${Math.round(r().retry_after_ms! / 1000)} s` : ''}.`}</span>
        </Show>
      </div>
      <Show when={r().error}>{(e) => <p class="answer-error">{e()}</p>}</Show>
      <Show when={r().response}>
        {(body) => (
          <>
            <p class="test-result-label">Receiver’s answer</p>
            <pre class="answer" data-testid="receiver-answer">
              {body()}
            </pre>
          </>
        )}
      </Show>
    </section>
  )
}
