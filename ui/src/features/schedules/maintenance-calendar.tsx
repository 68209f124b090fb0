import { A } from '@solidjs/router'
import { createMemo, createResource, createSignal, For, Show } from 'solid-js'
import { api, unwrap } from '../../api.ts'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { entriesFor, monthGrid, MONTHS, todayIn, type Day } from './calendar.ts'
import { browserZone } from './time.ts'
import type { Opening } from './types.ts'
import { ZoneField } from './zone-field.tsx'

/*
 * A month of maintenance windows: every opening the server computes for the six weeks shown
 * (GET /maintenance-windows/calendar), drawn on the days it covers in the zone chosen for display.
 * On a phone the grid becomes an agenda of the days that have openings.
 */

const WEEK = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']
const WEEK_LONG = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday']

export function MaintenanceCalendar(props: { reloadKey?: number }) {
  const today = todayIn(browserZone())
  const [month, setMonth] = createSignal({ year: Number(today.slice(0, 4)), month: Number(today.slice(5, 7)) })
  const [zone, setZone] = createSignal(browserZone())
  const validZone = createMemo<string>((prev) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: zone() })
      return zone()
    } catch {
      return prev
    }
  }, browserZone())
  const grid = createMemo(() => monthGrid(month().year, month().month, validZone()))
  const [calendar, { refetch }] = createResource(
    () => ({ from: new Date(grid()[0]!.start).toISOString(), to: new Date(grid()[41]!.end).toISOString(), reload: props.reloadKey ?? 0 }),
    (range) => unwrap(api['maintenance-windows'].calendar.$get({ query: { from: range.from, to: range.to } }), 'GET /maintenance-windows/calendar'),
  )
  const openings = (): Opening[] => (calendar.error ? [] : (calendar.latest?.items ?? []))
  const shift = (delta: number) => {
    const m = month().month - 1 + delta
    setMonth({ year: month().year + Math.floor(m / 12), month: ((m % 12) + 12) % 12 + 1 })
  }
  const title = () => `${MONTHS[month().month - 1]} ${month().year}`
  const weeks = createMemo(() => [0, 1, 2, 3, 4, 5].map((w) => grid().slice(w * 7, w * 7 + 7)))
  const todayInZone = () => todayIn(validZone())

  return (
    <section class="card calendar-card" aria-labelledby="calendar-title" aria-busy={calendar.loading}>
      <div class="calendar-head">
        <h2 id="calendar-title" class="calendar-title" aria-live="polite">
          {title()}
        </h2>
        <div class="calendar-nav" role="group" aria-label="Month">
          <button type="button" class="button small" onClick={() => shift(-1)}>
            <span aria-hidden="true">‹ </span>Previous
          </button>
          <button type="button" class="button small" onClick={() => setMonth({ year: Number(todayInZone().slice(0, 4)), month: Number(todayInZone().slice(5, 7)) })}>
            Today
          </button>
          <button type="button" class="button small" onClick={() => shift(1)}>
            Next<span aria-hidden="true"> ›</span>
          </button>
        </div>
        <div class="calendar-zone">
          <ZoneField label="Show times in" value={zone()} onZone={setZone} />
        </div>
      </div>
      <Show when={calendar.error}>{(err) => <ErrorPanel title="Could not load the calendar" error={err()} onRetry={() => void refetch()} />}</Show>
      <Show when={!calendar.error && calendar.latest && calendar.latest.truncated.length > 0}>
        <p class="hint">Some windows open more often than the calendar can show; the first 1,000 openings of each are drawn.</p>
      </Show>
      <table class="month-grid" aria-labelledby="calendar-title">
        <thead>
          <tr>
            <For each={WEEK}>
              {(d, i) => (
                <th scope="col">
                  <abbr title={WEEK_LONG[i()]}>{d}</abbr>
                </th>
              )}
            </For>
          </tr>
        </thead>
        <tbody>
          <For each={weeks()}>
            {(week) => (
              <tr>
                <For each={week}>{(day) => <DayCell day={day} openings={openings()} zone={validZone()} today={todayInZone()} />}</For>
              </tr>
            )}
          </For>
        </tbody>
      </table>
      <Agenda days={grid().filter((d) => d.inMonth)} openings={openings()} zone={validZone()} loaded={!!calendar.latest} />
      <p class="calendar-legend hint">
        <span class="legend-chip action-skip">skip</span> fires are skipped · <span class="legend-chip action-defer">defer</span> fires wait for the end · <span class="legend-chip disabled">disabled</span> not in force
      </p>
    </section>
  )
}

function Chip(props: { entry: ReturnType<typeof entriesFor>[number] }) {
  const o = () => props.entry.opening
  return (
    <A
      href={`/schedules/maintenance/${o().window_id}`}
      class={`window-chip action-${o().action}`}
      classList={{ disabled: !o().enabled }}
      title={`${o().name}: ${props.entry.span} (${o().action}${o().enabled ? '' : ', disabled'})`}
    >
      <span class="chip-time">{props.entry.span}</span> <span class="chip-name">{o().name}</span>
    </A>
  )
}

function DayCell(props: { day: Day; openings: Opening[]; zone: string; today: string }) {
  const entries = createMemo(() => entriesFor(props.day, props.openings, props.zone))
  const max = 3
  return (
    <td class="day" classList={{ outside: !props.day.inMonth, today: props.day.date === props.today }} data-date={props.day.date}>
      <div class="day-number" aria-current={props.day.date === props.today ? 'date' : undefined}>
        <span class="visually-hidden">{props.day.date}</span>
        <span aria-hidden="true">{props.day.dayOfMonth}</span>
      </div>
      <ul class="day-entries">
        <For each={entries().slice(0, max)}>
          {(e) => (
            <li>
              <Chip entry={e} />
            </li>
          )}
        </For>
        <Show when={entries().length > max}>
          <li class="hint more-chip">+{entries().length - max} more</li>
        </Show>
      </ul>
    </td>
  )
}

function Agenda(props: { days: Day[]; openings: Opening[]; zone: string; loaded: boolean }) {
  const withEntries = createMemo(() => props.days.map((d) => ({ day: d, entries: entriesFor(d, props.openings, props.zone) })).filter((d) => d.entries.length > 0))
  return (
    <div class="agenda">
      <Show when={withEntries().length > 0} fallback={<p class="hint">{props.loaded ? 'No maintenance this month.' : 'Loading…'}</p>}>
        <ul class="agenda-days">
          <For each={withEntries()}>
            {(d) => (
              <li>
                <div class="agenda-date">{d.day.date}</div>
                <ul class="day-entries">
                  <For each={d.entries}>
                    {(e) => (
                      <li>
                        <Chip entry={e} />
                      </li>
                    )}
                  </For>
                </ul>
              </li>
            )}
          </For>
        </ul>
      </Show>
    </div>
  )
}
