import { createMemo, createSignal, createUniqueId, For, Show } from 'solid-js'
import { Badge } from '../../components/badge.tsx'
import type { RunLive } from './run-live.ts'
import { statusLabel, statusTone } from './status.ts'
import { StepGridModel } from './step-grid-model.ts'

const PAGE = 100

interface Props {
  live: RunLive
  selected: string | null
  onSelect: (stepRunId: string) => void
}

/** Live status per step × target: rows are targets, columns steps; a cell selects its output. */
export function StepGrid(props: Props) {
  const grid = props.live.grid
  const [filter, setFilter] = createSignal('')
  const [limit, setLimit] = createSignal(PAGE)
  const filterId = createUniqueId()
  const steps = createMemo(() => {
    props.live.gridRev()
    return [...grid.steps]
  })
  const rows = createMemo(() => {
    props.live.gridRev()
    const f = filter().trim().toLowerCase()
    return f ? grid.targets.filter((t) => StepGridModel.targetLabel(t).toLowerCase().includes(f)) : [...grid.targets]
  })
  const shown = () => rows().slice(0, limit())

  return (
    <section class="card step-grid-card" aria-labelledby="grid-heading">
      <div class="grid-head">
        <h2 id="grid-heading">Steps</h2>
        <Show when={grid.targets.length > 12 || filter()}>
          <div class="grid-filter">
            <label for={filterId}>Find target</label>
            <input id={filterId} class="input" type="search" value={filter()} onInput={(e) => setFilter(e.currentTarget.value)} />
          </div>
        </Show>
      </div>
      <Show when={steps().length > 0} fallback={<p class="hint">{props.live.ended() ? 'This run has no steps.' : 'Waiting for the run to start…'}</p>}>
        <div class="table-wrap grid-wrap">
          <table class="data step-grid">
            <caption class="visually-hidden">Status of each step on each target; choose a cell to see its output</caption>
            <thead>
              <tr>
                <th scope="col">Target</th>
                <For each={steps()}>{(s) => <th scope="col">{s}</th>}</For>
              </tr>
            </thead>
            <tbody>
              <For each={shown()}>
                {(target) => (
                  <tr>
                    <th scope="row" class="grid-target">
                      {StepGridModel.targetLabel(target)}
                    </th>
                    <For each={steps()}>
                      {(stepId) => {
                        const cell = () => {
                          props.live.gridRev()
                          const c = grid.cell(target, stepId)
                          return c ? { ...c } : undefined
                        }
                        return (
                          <td>
                            <Show when={cell()} fallback={<span class="grid-none">—</span>}>
                              {(c) => (
                                <button
                                  type="button"
                                  class="grid-cell"
                                  aria-pressed={props.selected === c().stepRunId}
                                  aria-label={`${stepId} on ${StepGridModel.targetLabel(target)}: ${statusLabel(c().status)}${c().attempt > 1 ? `, attempt ${c().attempt}` : ''}`}
                                  title={c().error ?? (c().exitCode !== null ? `exit code ${c().exitCode}` : undefined)}
                                  onClick={() => props.onSelect(c().stepRunId)}
                                >
                                  <Badge tone={statusTone(c().status)}>{statusLabel(c().status)}</Badge>
                                  <Show when={c().attempt > 1}>
                                    <span class="grid-attempt">×{c().attempt}</span>
                                  </Show>
                                </button>
                              )}
                            </Show>
                          </td>
                        )
                      }}
                    </For>
                  </tr>
                )}
              </For>
            </tbody>
          </table>
        </div>
        <Show when={rows().length > shown().length}>
          <p class="hint">
            Showing {shown().length} of {rows().length} targets.{' '}
            <button type="button" class="link-button" onClick={() => setLimit(limit() + PAGE * 5)}>
              Show more targets
            </button>
          </p>
        </Show>
      </Show>
    </section>
  )
}
