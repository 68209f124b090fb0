import { createSignal, For, Show } from 'solid-js'
import { FieldControl } from './field-control.tsx'
import { errorUnder, stepErrors, type DraftStep } from './model.ts'
import { PALETTE_MIME } from './palette.tsx'
import { COMMON_FIELDS, stepTypeInfo } from './step-types.ts'

/*
 * The job's steps in order. Reorder by dragging a step's handle, with its Move up / Move down
 * buttons, or with Alt+ArrowUp / Alt+ArrowDown while its header has focus; focus stays on the
 * moved step and the new position is announced (aria-live, by the builder).
 */

const STEP_MIME = 'application/x-opsc-step'

interface Props {
  steps: DraftStep[]
  errors: Record<string, string>
  expanded: (key: string) => boolean
  onToggle: (key: string) => void
  onMove: (from: number, to: number, how: 'keyboard' | 'drag') => void
  onRemove: (index: number) => void
  onField: (index: number, key: string, value: unknown) => void
  /** A palette item dropped at `index`. */
  onDropNew: (paletteId: string, index: number) => void
}

export const fieldId = (stepKey: string, field: string) => `f-${stepKey}-${field.replace(/[^A-Za-z0-9_-]/g, '_')}`

export function StepList(props: Props) {
  // Where a drop would land: "before index n" (n = length means at the end).
  const [dropAt, setDropAt] = createSignal<number | null>(null)
  let listEl!: HTMLOListElement

  const dropIndex = (e: DragEvent, index: number) => {
    const rect = (e.currentTarget as HTMLElement).getBoundingClientRect()
    return e.clientY < rect.top + rect.height / 2 ? index : index + 1
  }
  // The list's own area (its padding, the empty-state line): a drop there goes at the end.
  const onList = (e: DragEvent) => e.target === listEl || !!(e.target as Element).closest?.('.step-empty')
  const accepts = (e: DragEvent) => !!e.dataTransfer && (e.dataTransfer.types.includes(STEP_MIME) || e.dataTransfer.types.includes(PALETTE_MIME))
  const drop = (e: DragEvent, at: number) => {
    e.preventDefault()
    setDropAt(null)
    const stepKey = e.dataTransfer?.getData(STEP_MIME)
    if (stepKey) {
      const from = props.steps.findIndex((s) => s.key === stepKey)
      if (from >= 0) props.onMove(from, at > from ? at - 1 : at, 'drag')
      return
    }
    const item = e.dataTransfer?.getData(PALETTE_MIME)
    if (item) props.onDropNew(item, at)
  }

  return (
    <ol
      ref={listEl}
      class="step-list"
      classList={{ 'drop-end': dropAt() === props.steps.length && props.steps.length > 0, empty: props.steps.length === 0 }}
      aria-label="Steps"
      onDragOver={(e) => {
        if (!accepts(e) || !onList(e)) return
        e.preventDefault()
        setDropAt(props.steps.length)
      }}
      onDragLeave={(e) => {
        if (onList(e)) setDropAt(null)
      }}
      onDrop={(e) => onList(e) && drop(e, props.steps.length)}
    >
      <For each={props.steps}>
        {(step, index) => (
          <StepCard
            step={step}
            index={index()}
            count={props.steps.length}
            errors={stepErrors(props.errors, index())}
            open={props.expanded(step.key)}
            dropBefore={dropAt() === index()}
            dropAfter={dropAt() === index() + 1 && index() === props.steps.length - 1}
            onToggle={() => props.onToggle(step.key)}
            onMove={(to, how) => props.onMove(index(), to, how)}
            onRemove={() => props.onRemove(index())}
            onField={(k, v) => props.onField(index(), k, v)}
            onDragOver={(e) => {
              if (!accepts(e)) return
              e.preventDefault()
              setDropAt(dropIndex(e, index()))
            }}
            onDrop={(e) => drop(e, dropIndex(e, index()))}
            onDragEnd={() => setDropAt(null)}
          />
        )}
      </For>
      <Show when={props.steps.length === 0}>
        <li class="step-empty">No steps yet. Add one from the palette, or drag one here.</li>
      </Show>
    </ol>
  )
}

interface CardProps {
  step: DraftStep
  index: number
  count: number
  errors: Record<string, string>
  open: boolean
  dropBefore: boolean
  dropAfter: boolean
  onToggle: () => void
  onMove: (to: number, how: 'keyboard' | 'drag') => void
  onRemove: () => void
  onField: (key: string, value: unknown) => void
  onDragOver: (e: DragEvent) => void
  onDrop: (e: DragEvent) => void
  onDragEnd: () => void
}

function StepCard(props: CardProps) {
  const info = () => stepTypeInfo(props.step.fields.type)
  const type = () => (typeof props.step.fields.type === 'string' ? props.step.fields.type : '(no type)')
  const title = () => (typeof props.step.fields.name === 'string' && props.step.fields.name.trim() ? props.step.fields.name : (info()?.label ?? type()))
  const problems = () => Object.keys(props.errors).length
  const known = () => new Set<string>(['type', ...COMMON_FIELDS.map((f) => f.key), ...(info()?.fields.map((f) => f.key) ?? [])])
  const others = () => Object.keys(props.step.fields).filter((k) => !known().has(k))
  const commonOpen = () => COMMON_FIELDS.some((f) => errorUnder(props.errors, f.key))
  const titleId = () => `step-title-${props.step.key}`
  const bodyId = () => `step-body-${props.step.key}`

  const onKeyDown = (e: KeyboardEvent) => {
    if (!e.altKey || (e.key !== 'ArrowUp' && e.key !== 'ArrowDown')) return
    e.preventDefault()
    props.onMove(props.index + (e.key === 'ArrowUp' ? -1 : 1), 'keyboard')
  }

  return (
    <li class="step-card" classList={{ 'drop-before': props.dropBefore, 'drop-after': props.dropAfter, invalid: problems() > 0 }} data-step-key={props.step.key} onDragOver={(e) => props.onDragOver(e)} onDrop={(e) => props.onDrop(e)}>
      <div role="group" aria-labelledby={titleId()}>
        <div class="step-head" onKeyDown={onKeyDown}>
          <span
            class="drag-handle"
            draggable="true"
            title="Drag to reorder"
            aria-hidden="true"
            onDragStart={(e) => {
              e.dataTransfer?.setData(STEP_MIME, props.step.key)
              e.dataTransfer?.setData('text/plain', title())
              if (e.dataTransfer) e.dataTransfer.effectAllowed = 'move'
            }}
            onDragEnd={() => props.onDragEnd()}
          >
            ⠿
          </span>
          <span class="step-num" aria-hidden="true">
            {props.index + 1}
          </span>
          <button type="button" class="step-title" id={titleId()} data-focus="title" aria-expanded={props.open} aria-controls={bodyId()} aria-keyshortcuts="Alt+ArrowUp Alt+ArrowDown" onClick={() => props.onToggle()}>
            <span class="step-caret" aria-hidden="true">
              {props.open ? '▾' : '▸'}
            </span>
            <span class="visually-hidden">Step {props.index + 1}: </span>
            <span class="step-name">{title()}</span> <span class="mono step-type">{type()}</span>
          </button>
          <Show when={problems()}>
            <span class="badge tone-bad step-problems">{problems() === 1 ? '1 problem' : `${problems()} problems`}</span>
          </Show>
          <div class="step-actions">
            <button type="button" class="button small icon" data-focus="up" aria-label="Move up" title="Move up (Alt+↑)" aria-disabled={props.index === 0 ? 'true' : undefined} onClick={() => props.index > 0 && props.onMove(props.index - 1, 'keyboard')}>
              ↑
            </button>
            <button type="button" class="button small icon" data-focus="down" aria-label="Move down" title="Move down (Alt+↓)" aria-disabled={props.index === props.count - 1 ? 'true' : undefined} onClick={() => props.index < props.count - 1 && props.onMove(props.index + 1, 'keyboard')}>
              ↓
            </button>
            <button type="button" class="button small danger" onClick={() => props.onRemove()}>
              Remove
            </button>
          </div>
        </div>
        <div id={bodyId()} class="step-body" hidden={!props.open}>
          <Show when={props.errors['']}>
            <p class="field-error">{props.errors['']}</p>
          </Show>
          <Show when={props.errors.type}>
            <p class="field-error">Type: {props.errors.type}</p>
          </Show>
          <Show when={info()} fallback={<p class="hint">Unknown step type “{type()}”: edit it in the JSON view.</p>}>
            {(i) => (
              <div class="form-grid step-fields">
                <For each={i().fields}>{(spec) => <div classList={{ wide: spec.kind === 'textarea' || spec.kind === 'json' }}><FieldControl spec={spec} id={fieldId(props.step.key, spec.key)} value={props.step.fields[spec.key]} error={errorUnder(props.errors, spec.key)} onChange={(v) => props.onField(spec.key, v)} /></div>}</For>
              </div>
            )}
          </Show>
          <details class="step-options" open={commonOpen() || undefined}>
            <summary>Step options</summary>
            <div class="form-grid">
              <For each={COMMON_FIELDS}>{(spec) => <FieldControl spec={spec} id={fieldId(props.step.key, spec.key)} value={props.step.fields[spec.key]} error={errorUnder(props.errors, spec.key)} onChange={(v) => props.onField(spec.key, v)} />}</For>
            </div>
          </details>
          <Show when={others().length}>
            <p class="hint">
              Also set: <span class="mono">{others().join(', ')}</span> (edit in the JSON view)
              <Show when={others().some((k) => props.errors[k])}>
                <For each={others().filter((k) => props.errors[k])}>{(k) => <span class="field-error"> {k}: {props.errors[k]}</span>}</For>
              </Show>
            </p>
          </Show>
        </div>
      </div>
    </li>
  )
}
