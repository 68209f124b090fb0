import { createResource, createSignal, For, Match, Show, Switch } from 'solid-js'
import { Badge } from '../../components/badge.tsx'
import { DataTable } from '../../components/data-table.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { SelectField } from '../../components/form.tsx'
import { createPaged, LoadMore } from '../../components/paged.tsx'
import { Time } from '../../components/time.tsx'
import { getJobVersion, listVersions } from './jobs-api.ts'
import { changeCount, diffRows } from './version-diff.ts'

/*
 * A job's versions, newest first (keyset pages), and a line diff between any two of them.
 */

export function Versions(props: { jobId: string; latest: number }) {
  const list = createPaged(() => props.jobId, listVersions)

  const [from, setFrom] = createSignal(Math.max(1, props.latest - 1))
  const [to, setTo] = createSignal(props.latest)
  const [diff, { refetch }] = createResource(
    () => ({ a: from(), b: to() }),
    async ({ a, b }) => {
      const [x, y] = await Promise.all([getJobVersion(props.jobId, a), getJobVersion(props.jobId, b)])
      return { a, b, rows: diffRows(x, y) }
    },
  )
  const numbers = () => list.items().map((v) => v.version)

  return (
    <section class="card versions" aria-labelledby="versions-title">
      <h2 id="versions-title">Versions</h2>
      <Show when={list.error()}>
        <ErrorPanel title="Could not load the versions" error={list.error()} onRetry={() => void list.reload()} />
      </Show>
      <DataTable label="Version list" columns={['Version', 'Name', 'Steps', 'Saved', 'By']} focusable each={list.items()}>
        {(v) => (
          <tr>
            <td>
              v{v.version}
              <Show when={v.version === props.latest}>
                {' '}
                <Badge tone="neutral">current</Badge>
              </Show>
            </td>
            <td>{v.name}</td>
            <td>{v.step_count}</td>
            <td>
              <Time iso={v.created_at} />
            </td>
            <td>{v.created_by ?? '—'}</td>
          </tr>
        )}
      </DataTable>
      <LoadMore list={list} what="versions" />
      <Show when={props.latest > 1} fallback={<p class="hint">Only one version so far: every save adds one.</p>}>
        <h3 class="diff-title">Compare</h3>
        <div class="toolbar diff-pick">
          <SelectField label="From version" value={String(from())} onChange={(e) => setFrom(Number(e.currentTarget.value))}>
            <For each={numbers().length ? numbers() : [from()]}>
              {(n) => (
                <option value={n} selected={n === from()}>
                  v{n}
                </option>
              )}
            </For>
          </SelectField>
          <SelectField label="To version" value={String(to())} onChange={(e) => setTo(Number(e.currentTarget.value))}>
            <For each={numbers().length ? numbers() : [to()]}>
              {(n) => (
                <option value={n} selected={n === to()}>
                  v{n}
                </option>
              )}
            </For>
          </SelectField>
        </div>
        <Switch fallback={<div class="card-loading" aria-busy="true">Comparing…</div>}>
          <Match when={diff.error as unknown}>{(err) => <ErrorPanel title="Could not compare the versions" error={err()} onRetry={() => void refetch()} />}</Match>
          <Match when={diff.latest}>
            {(d) => (
              // Labelled by the versions the rows are of (the pickers may already name the next pair).
              <div class="diff" role="region" aria-label={`Changes from v${d().a} to v${d().b}`} aria-busy={diff.loading} tabindex="0">
                <p class="hint">{changeCount(d().rows) === 0 ? 'No differences.' : `${changeCount(d().rows)} changed lines (− v${d().a}, + v${d().b}).`}</p>
                <pre class="diff-lines">
                  <For each={d().rows}>
                    {(r) =>
                      r.kind === 'skip' ? (
                        <span class="diff-row diff-skip">⋯ {r.count} unchanged lines</span>
                      ) : r.kind === 'add' ? (
                        <ins class="diff-row diff-add">+ {r.text}</ins>
                      ) : r.kind === 'del' ? (
                        <del class="diff-row diff-del">− {r.text}</del>
                      ) : (
                        <span class="diff-row">{'  '}{r.text}</span>
                      )
                    }
                  </For>
                </pre>
              </div>
            )}
          </Match>
        </Switch>
      </Show>
    </section>
  )
}
