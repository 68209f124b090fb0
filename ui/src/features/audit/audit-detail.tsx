import { Show } from 'solid-js'
import { Badge } from '../../components/badge.tsx'
import { CopyButton } from '../../components/copy.tsx'
import { Dialog } from '../../components/dialog.tsx'
import { formatDateTime } from '../../components/format.ts'
import { OUTCOME_TONE, type AuditEvent, type Filters } from './audit-page.tsx'

/** One entry in full: who, what, on what, from where, the summary as JSON, and its place in the chain. */
export function AuditDetail(props: { entry: AuditEvent; onClose: () => void; onFilter: (f: Filters) => void }) {
  const e = () => props.entry
  const json = () => JSON.stringify(e().summary, null, 2)
  return (
    <Dialog title={`Audit entry #${e().id}`} subtitle={<span class="mono">{e().action}</span>} onClose={props.onClose} variant="drawer">
      <dl class="facts audit-facts">
        <dt>Time</dt>
        <dd>
          <time datetime={e().at}>{formatDateTime(e().at)}</time>
          <div class="muted mono id-line">{e().at}</div>
        </dd>
        <dt>Outcome</dt>
        <dd>
          <Badge tone={OUTCOME_TONE[e().outcome]}>{e().outcome}</Badge>
        </dd>
        <dt>Actor</dt>
        <dd>
          {e().actor.name ?? '—'} <span class="muted">({e().actor.type})</span>
          <Show when={e().actor.id}>
            {(id) => <div class="mono muted id-line">{id()}</div>}
          </Show>
        </dd>
        <dt>Action</dt>
        <dd class="mono">{e().action}</dd>
        <dt>Resource</dt>
        <dd>
          {e().resource.type ?? '—'}
          <Show when={e().resource.id}>{(id) => <div class="mono id-line">{id()}</div>}</Show>
        </dd>
        <dt>Client address</dt>
        <dd class="mono">{e().client_address ?? '—'}</dd>
        <dt>Request id</dt>
        <dd class="mono">{e().request_id ?? '—'}</dd>
      </dl>

      <div class="detail-filters" role="group" aria-label="Filter the log by this entry">
        <Show when={e().actor.name ?? e().actor.id}>
          {(actor) => (
            <button type="button" class="button small" onClick={() => props.onFilter({ actor: actor() })}>
              Entries by this actor
            </button>
          )}
        </Show>
        <button type="button" class="button small" onClick={() => props.onFilter({ action: e().action })}>
          Entries with this action
        </button>
        <Show when={e().resource.type}>
          {(type) => (
            <button type="button" class="button small" onClick={() => props.onFilter({ resource_type: type(), resource_id: e().resource.id ?? undefined })}>
              Entries for this resource
            </button>
          )}
        </Show>
      </div>

      <div class="summary-head">
        <h3>Summary</h3>
        <CopyButton text={json()} label="Copy JSON" />
      </div>
      <pre class="json" tabindex="0" aria-label="Summary as JSON">
        {json()}
      </pre>

      <h3>Chain</h3>
      <dl class="facts audit-facts">
        <dt>Hash</dt>
        <dd class="mono hash">{e().hash}</dd>
        <dt>Previous hash</dt>
        <dd class="mono hash">{e().prev_hash ?? '— (first entry)'}</dd>
      </dl>
    </Dialog>
  )
}
