import { createEffect, createResource, createSignal, For, on, onCleanup, Show } from 'solid-js'
import { api, ApiError, fieldErrors, unwrap } from '../../api.ts'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { splitLocal } from './time.ts'
import type { Preview } from './types.ts'

/*
 * The next fires of an expression in its zone, as the server computes them (the same code the
 * scheduler fires with): wall-clock time and offset in the zone, and UTC. Asked again shortly
 * after the expression or zone stops changing. A 400 is the server's verdict on the expression
 * or the zone: handed to the form (onProblems) to show by its field, not here.
 */

const DEBOUNCE_MS = 250

export interface NextFiresProps {
  cron: string
  timezone: string
  /** A start in the future: fires from then on. */
  startAt?: string | undefined
  /** Fires after this are not shown. */
  endAt?: string | undefined
  count?: number
  onProblems: (problems: Record<string, string>) => void
}

interface Ask {
  cron: string
  timezone: string
  startAt: string | undefined
  endAt: string | undefined
  count: number
}

export function NextFires(props: NextFiresProps) {
  const current = (): Ask => ({ cron: props.cron.trim(), timezone: props.timezone.trim(), startAt: props.startAt, endAt: props.endAt, count: props.count ?? 10 })
  const [ask, setAsk] = createSignal<Ask>(current())
  createEffect(
    on(
      () => JSON.stringify(current()),
      () => {
        const timer = setTimeout(() => setAsk(current()), DEBOUNCE_MS)
        onCleanup(() => clearTimeout(timer))
      },
      { defer: true },
    ),
  )

  const [preview, { refetch }] = createResource(
    () => (ask().cron && ask().timezone ? ask() : false),
    async (a): Promise<Preview> => {
      const from = a.startAt && new Date(a.startAt).getTime() > Date.now() ? new Date(new Date(a.startAt).getTime() - 1).toISOString() : undefined
      try {
        const res = await unwrap(api.schedules.preview.$get({ query: { cron: a.cron, tz: a.timezone, count: String(a.count), ...(from ? { from } : {}) } }), 'GET /schedules/preview')
        props.onProblems({})
        const end = a.endAt ? new Date(a.endAt).getTime() : undefined
        return end === undefined ? res : { ...res, fires: res.fires.filter((f) => new Date(f.at_utc).getTime() <= end) }
      } catch (err) {
        if (err instanceof ApiError && err.status === 400) {
          const byField = fieldErrors(err)
          // The preview names the zone `tz`; the schedule calls it `timezone`.
          props.onProblems({ ...(byField.cron ? { cron: byField.cron } : {}), ...(byField.tz ? { timezone: byField.tz } : {}) })
        } else props.onProblems({})
        throw err
      }
    },
  )
  const invalid = () => preview.error instanceof ApiError && preview.error.status === 400

  return (
    <section class="card next-fires" aria-labelledby="next-fires-title" aria-busy={preview.loading}>
      <h2 id="next-fires-title">Next fires{!preview.error && preview.latest?.timezone ? ` · ${preview.latest.timezone}` : ''}</h2>
      <Show when={ask().cron && ask().timezone} fallback={<p class="hint">Enter a cron expression and a time zone to see when it fires.</p>}>
        <Show
          when={!preview.error}
          fallback={
            <Show when={!invalid()} fallback={<p class="hint">The expression or zone is not valid yet: see the message under the field.</p>}>
              <ErrorPanel title="Could not compute the next fires" error={preview.error} onRetry={() => void refetch()} />
            </Show>
          }
        >
          <Show when={preview.latest} fallback={<p class="hint" aria-busy="true">Computing…</p>}>
            {(p) => (
              <Show when={p().fires.length > 0} fallback={<p class="hint">No fires left (the end date has passed).</p>}>
                <ol class="fire-list" aria-label="Next fires">
                  <For each={p().fires}>
                    {(f) => {
                      const local = splitLocal(f.at_local)
                      return (
                        <li data-at={f.at_utc}>
                          <time datetime={f.at_utc}>
                            <span class="fire-day">{local.weekday}</span> <span class="fire-date">{local.date}</span> <strong class="fire-time">{local.time}</strong>
                          </time>{' '}
                          <span class="fire-offset">UTC{local.offset}</span>
                          <span class="fire-utc hint">{f.at_utc.slice(0, 16).replace('T', ' ')} UTC</span>
                        </li>
                      )
                    }}
                  </For>
                </ol>
              </Show>
            )}
          </Show>
        </Show>
      </Show>
    </section>
  )
}
