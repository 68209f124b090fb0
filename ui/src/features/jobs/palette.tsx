import { createSignal, For, Show } from 'solid-js'
import { STEP_TYPES, TEMPLATES, type Group, type StepTypeInfo, type Template } from './step-types.ts'

/*
 * The step palette: the seed's templates and every step type. Click (or Enter) adds the step at
 * the end; dragging an item onto the step list inserts it where it is dropped.
 */

export const PALETTE_MIME = 'application/x-opsc-palette'

export type PaletteItem = { kind: 'template'; template: Template } | { kind: 'type'; info: StepTypeInfo }

export const paletteItemById = (id: string): PaletteItem | undefined => {
  const [kind, name] = id.split(':', 2) as [string, string]
  if (kind === 'template') {
    const template = TEMPLATES.find((t) => t.id === name)
    return template && { kind, template }
  }
  const info = STEP_TYPES.find((t) => t.type === name)
  return info && { kind: 'type', info }
}

const GROUPS: Group[] = ['Commands', 'Files', 'HTTP', 'Data', 'Flow']

export function Palette(props: { id: string; onAdd: (item: PaletteItem) => void }) {
  const [filter, setFilter] = createSignal('')
  const matches = (...texts: string[]) => {
    const f = filter().trim().toLowerCase()
    return f === '' || texts.some((t) => t.toLowerCase().includes(f))
  }
  const templates = () => TEMPLATES.filter((t) => matches(t.label, t.description, t.step.type))
  const types = (g: Group) => STEP_TYPES.filter((t) => t.group === g && matches(t.label, t.type, t.description))
  const drag = (id: string) => (e: DragEvent) => {
    e.dataTransfer?.setData(PALETTE_MIME, id)
    e.dataTransfer?.setData('text/plain', id)
    if (e.dataTransfer) e.dataTransfer.effectAllowed = 'copy'
  }
  return (
    <section id={props.id} class="palette card" aria-labelledby={`${props.id}-title`}>
      <h3 id={`${props.id}-title`}>Step palette</h3>
      <div class="field">
        <label for={`${props.id}-filter`}>Filter steps</label>
        <input id={`${props.id}-filter`} type="search" value={filter()} onInput={(e) => setFilter(e.currentTarget.value)} />
      </div>
      <Show when={templates().length}>
        <h4>Templates</h4>
        <ul class="palette-list" aria-label="Templates">
          <For each={templates()}>
            {(t) => (
              <li>
                <button type="button" class="palette-item" draggable="true" aria-describedby={`pal-t-${t.id}`} onDragStart={drag(`template:${t.id}`)} onClick={() => props.onAdd({ kind: 'template', template: t })}>
                  {t.label}
                </button>
                <span class="palette-desc" id={`pal-t-${t.id}`}>
                  {t.description}
                </span>
              </li>
            )}
          </For>
        </ul>
      </Show>
      <For each={GROUPS.filter((g) => types(g).length)}>
        {(g) => (
          <>
            <h4>{g}</h4>
            <ul class="palette-list" aria-label={`${g} step types`}>
              <For each={types(g)}>
                {(t) => (
                  <li>
                    <button type="button" class="palette-item" draggable="true" aria-describedby={`pal-s-${t.type}`} onDragStart={drag(`type:${t.type}`)} onClick={() => props.onAdd({ kind: 'type', info: t })}>
                      {t.label} <span class="mono palette-type">({t.type})</span>
                    </button>
                    <span class="palette-desc" id={`pal-s-${t.type}`}>
                      {t.description}
                    </span>
                  </li>
                )}
              </For>
            </ul>
          </>
        )}
      </For>
      <Show when={!templates().length && !GROUPS.some((g) => types(g).length)}>
        <p class="hint">No step matches “{filter()}”.</p>
      </Show>
    </section>
  )
}
