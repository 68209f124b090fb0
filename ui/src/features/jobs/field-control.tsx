import { createSignal, createUniqueId, For, Show, type JSX } from 'solid-js'
import { Field, SelectField, TextAreaField } from '../../components/form.tsx'
import { isObject } from './model.ts'
import type { FieldSpec } from './step-types.ts'

/*
 * One form control for one field of a step (or of the job), converting between what the control
 * shows (text) and the JSON value the definition holds. Clearing a control removes the field, so
 * the server's default applies; what the text means is converted, never validated, here.
 */

interface Props {
  spec: FieldSpec
  value: unknown
  onChange: (value: unknown) => void
  error?: string | undefined
  /** Stable id, so a server error's link can focus the control (`steps[1].url` → `f-<key>-url`). */
  id: string
}

const labelOf = (spec: FieldSpec) => (spec.required ? `${spec.label} (required)` : spec.label)

export function FieldControl(props: Props): JSX.Element {
  const common = () => ({ id: props.id, label: labelOf(props.spec), error: props.error, 'aria-required': props.spec.required ? ('true' as const) : undefined })
  const hint = () => props.spec.hint
  switch (props.spec.kind) {
    case 'textarea':
      return <TextAreaField {...common()} hint={hint()} rows={4} value={typeof props.value === 'string' ? props.value : ''} onInput={(e) => props.onChange(e.currentTarget.value === '' ? undefined : e.currentTarget.value)} />
    case 'number':
      return (
        <Field
          {...common()}
          hint={hint()}
          type="number"
          step="any"
          value={typeof props.value === 'number' || typeof props.value === 'string' ? String(props.value) : ''}
          // On change (not input): re-rendering a half-typed number ("1.") would fight the typing.
          onChange={(e) => {
            const text = e.currentTarget.value
            props.onChange(text === '' ? undefined : Number.isFinite(Number(text)) ? Number(text) : text)
          }}
        />
      )
    case 'boolean':
      return <CheckboxField id={props.id} label={props.spec.label} error={props.error} checked={typeof props.value === 'boolean' ? props.value : (props.spec.default ?? false)} onChange={(v) => props.onChange(v)} />
    case 'select':
      return (
        <SelectField {...common()} value={typeof props.value === 'string' ? props.value : ''} onChange={(e) => props.onChange(e.currentTarget.value === '' ? undefined : e.currentTarget.value)}>
          <option value="" selected={props.value === undefined}>
            (default)
          </option>
          <For each={props.spec.options ?? []}>
            {(o) => (
              <option value={o} selected={props.value === o}>
                {o}
              </option>
            )}
          </For>
          <Show when={typeof props.value === 'string' && props.value !== '' && !(props.spec.options ?? []).includes(props.value)}>
            <option value={props.value as string} selected>
              {props.value as string}
            </option>
          </Show>
        </SelectField>
      )
    case 'map':
      return <TextAreaField {...common()} hint={hint()} rows={3} value={mapText(props.value, props.spec.separator ?? '=')} onChange={(e) => props.onChange(parseMap(e.currentTarget.value, props.spec.separator ?? '='))} />
    case 'lines':
      return (
        <TextAreaField
          {...common()}
          hint={hint()}
          rows={3}
          value={Array.isArray(props.value) ? props.value.join('\n') : ''}
          onChange={(e) => {
            const lines = e.currentTarget.value
              .split('\n')
              .map((l) => l.trim())
              .filter((l) => l !== '')
            props.onChange(lines.length ? lines : undefined)
          }}
        />
      )
    case 'status':
    case 'codes':
      return <Field {...common()} hint={hint()} value={Array.isArray(props.value) ? props.value.join(', ') : ''} onChange={(e) => props.onChange(parseCodes(e.currentTarget.value, props.spec.kind === 'codes'))} />
    case 'json':
      return <JsonField {...common()} hint={hint()} value={props.value} onChange={props.onChange} />
    case 'text':
      return <Field {...common()} hint={hint()} placeholder={props.spec.placeholder} value={typeof props.value === 'string' ? props.value : props.value === undefined ? '' : String(props.value)} onInput={(e) => props.onChange(e.currentTarget.value === '' ? undefined : e.currentTarget.value)} />
  }
}

export function CheckboxField(props: { id?: string; label: string; checked: boolean; onChange: (v: boolean) => void; error?: string | undefined; hint?: string }) {
  const id = props.id ?? createUniqueId()
  return (
    <div class="field checkbox-field" classList={{ invalid: !!props.error }}>
      <label for={id}>
        <input id={id} type="checkbox" checked={props.checked} aria-invalid={props.error ? 'true' : undefined} aria-describedby={props.error || props.hint ? `${id}-note` : undefined} onChange={(e) => props.onChange(e.currentTarget.checked)} />
        {props.label}
      </label>
      <Show when={props.error || props.hint}>
        <p id={`${id}-note`} class={props.error ? 'field-error' : 'hint'}>
          {props.error ?? props.hint}
        </p>
      </Show>
    </div>
  )
}

/** A JSON value edited as text: a parse problem is shown (and the value kept) until the text parses. */
function JsonField(props: { id: string; label: string; error?: string | undefined; hint?: string | undefined; value: unknown; onChange: (v: unknown) => void }) {
  const [local, setLocal] = createSignal<string | undefined>()
  const text = () => local() ?? (props.value === undefined ? '' : JSON.stringify(props.value, null, 2))
  return (
    <TextAreaField
      id={props.id}
      label={props.label}
      error={local() !== undefined ? 'Not valid JSON yet: the last valid value is kept' : props.error}
      hint={props.hint}
      rows={4}
      value={text()}
      onInput={(e) => {
        const t = e.currentTarget.value
        if (t.trim() === '') {
          setLocal(undefined)
          return props.onChange(undefined)
        }
        try {
          props.onChange(JSON.parse(t))
          setLocal(undefined)
        } catch {
          setLocal(t)
        }
      }}
    />
  )
}

function mapText(value: unknown, sep: string): string {
  if (!isObject(value)) return ''
  return Object.entries(value)
    .map(([k, v]) => `${k}${sep === ':' ? ': ' : sep}${String(v)}`)
    .join('\n')
}

function parseMap(text: string, sep: string): Record<string, string> | undefined {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    const at = line.indexOf(sep)
    if (at < 0) out[line.trim()] = ''
    else out[line.slice(0, at).trim()] = line.slice(at + 1).trim()
  }
  return Object.keys(out).length ? out : undefined
}

function parseCodes(text: string, numbersOnly: boolean): (string | number)[] | undefined {
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
  if (!parts.length) return undefined
  return parts.map((p) => (/^\d+$/.test(p) ? Number(p) : numbersOnly && Number.isFinite(Number(p)) ? Number(p) : p))
}
