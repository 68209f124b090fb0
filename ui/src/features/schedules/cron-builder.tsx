import { createSignal, createUniqueId, For, Match, Show, Switch } from 'solid-js'
import { Field, SelectField } from '../../components/form.tsx'
import { cronToPreset, DEFAULT_PRESET, describeCron, PRESET_LABELS, presetToCron, WEEKDAY_NAMES, WEEKDAYS, type Preset, type PresetKind } from './cron-presets.ts'

/*
 * The cron builder: pick a shape (every N minutes, hourly at, daily at, weekly on days, monthly on
 * a day) and fill it in, or write the expression yourself. The expression field is always there
 * and always what is saved; the builder writes into it and follows it when it is edited by hand.
 * The server's verdict on the expression (from the preview or the save) is shown under it.
 */

export interface CronBuilderProps {
  value: string
  onChange: (cron: string) => void
  error?: string | undefined
  disabled?: boolean
}

const KINDS = Object.keys(PRESET_LABELS) as PresetKind[]

export function CronBuilder(props: CronBuilderProps) {
  // Which shape the builder shows; starts from the expression (a new schedule: daily at 02:00).
  const [preset, setPreset] = createSignal<Preset>(props.value ? cronToPreset(props.value) : DEFAULT_PRESET)
  const ids = { legend: createUniqueId() }

  const apply = (next: Preset) => {
    setPreset(next)
    const cron = presetToCron(next)
    if (cron !== null) props.onChange(cron)
  }
  const edit = (patch: Partial<Preset>) => apply({ ...preset(), ...patch })
  const onRaw = (cron: string) => {
    props.onChange(cron)
    const known = cronToPreset(cron, preset())
    // A hand-written expression the builder knows moves the builder there; otherwise it says "custom".
    setPreset(known)
  }
  const toggleDay = (d: number, on: boolean) => edit({ days: on ? [...preset().days, d] : preset().days.filter((x) => x !== d) })
  const words = () => describeCron(props.value)

  return (
    <fieldset class="cron-builder" aria-labelledby={ids.legend} disabled={props.disabled}>
      <legend id={ids.legend}>Cron builder</legend>
      <div class="form-grid">
        <SelectField label="Repeat" value={preset().kind} onChange={(e) => apply({ ...preset(), kind: e.currentTarget.value as PresetKind })}>
          <For each={KINDS}>{(k) => <option value={k} selected={preset().kind === k}>
                {PRESET_LABELS[k]}
              </option>}</For>
        </SelectField>
        <Switch>
          <Match when={preset().kind === 'minutes'}>
            <Field label="Every (minutes)" type="number" min="1" max="59" value={String(preset().every)} onInput={(e) => edit({ every: Number(e.currentTarget.value) })} />
          </Match>
          <Match when={preset().kind === 'hourly'}>
            <Field label="Minute past the hour" type="number" min="0" max="59" value={String(preset().minute)} onInput={(e) => edit({ minute: Number(e.currentTarget.value) })} />
          </Match>
          <Match when={preset().kind === 'daily' || preset().kind === 'weekly' || preset().kind === 'monthly'}>
            <Field label="Time of day" type="time" value={preset().time} onInput={(e) => edit({ time: e.currentTarget.value })} />
          </Match>
        </Switch>
        <Show when={preset().kind === 'monthly'}>
          <Field label="Day of month" type="number" min="1" max="31" value={String(preset().day)} onInput={(e) => edit({ day: Number(e.currentTarget.value) })} hint="Months without this day are skipped." />
        </Show>
      </div>
      <Show when={preset().kind === 'weekly'}>
        <fieldset class="weekday-picker">
          <legend>On days</legend>
          <For each={[1, 2, 3, 4, 5, 6, 0]}>
            {(d) => (
              <label class="day-chip" title={WEEKDAY_NAMES[d]}>
                <input type="checkbox" checked={preset().days.includes(d)} onChange={(e) => toggleDay(d, e.currentTarget.checked)} aria-label={WEEKDAY_NAMES[d]} />
                <span aria-hidden="true">{WEEKDAYS[d]}</span>
              </label>
            )}
          </For>
        </fieldset>
      </Show>
      <Field
        label="Cron expression"
        name="cron"
        class="mono"
        autocomplete="off"
        spellcheck={false}
        required
        value={props.value}
        onInput={(e) => onRaw(e.currentTarget.value)}
        error={props.error}
        hint={words() ? `${words()} · minute hour day-of-month month day-of-week` : 'minute hour day-of-month month day-of-week (6 fields with seconds first), or @daily, @hourly…'}
      />
    </fieldset>
  )
}
