import { For, Match, Show, Switch } from 'solid-js'
import type { ParameterDef } from '../../../../controller/src/jobs/definition.ts'
import { Field, SelectField } from '../../components/form.tsx'

/*
 * Values for a job's parameters, one control per parameter by its type. Values are kept as the
 * strings the controls hold; an empty one is not sent, so the job's default applies at fire time.
 * A stored secret comes back from the API as `****`: left empty, the form sends `****` back,
 * which keeps it.
 */

export const SECRET_MASK = '****'

export interface ParamsEditorProps {
  defs: ParameterDef[]
  values: Record<string, string>
  onChange: (name: string, value: string) => void
  /** Names of secret parameters with a stored value. */
  storedSecrets: Set<string>
  errors: Record<string, string>
  disabled?: boolean
}

const labelOf = (d: ParameterDef) => `${d.label ?? d.name}${d.required ? ' (required)' : ''}`

function hintOf(d: ParameterDef): string | undefined {
  const parts: string[] = []
  if (d.description) parts.push(d.description)
  if (d.default !== undefined) parts.push(`Default: ${String(d.default)}`)
  return parts.length ? parts.join(' · ') : undefined
}

export function ParamsEditor(props: ParamsEditorProps) {
  return (
    <Show when={props.defs.length > 0} fallback={<p class="hint">This job takes no parameters.</p>}>
      <div class="form-grid">
        <For each={props.defs}>
          {(d) => {
            const error = () => props.errors[`parameters.${d.name}`]
            const value = () => props.values[d.name] ?? ''
            return (
              <Switch
                fallback={
                  <Field
                    label={labelOf(d)}
                    name={`param-${d.name}`}
                    value={value()}
                    placeholder={d.default !== undefined ? String(d.default) : ''}
                    onInput={(e) => props.onChange(d.name, e.currentTarget.value)}
                    error={error()}
                    hint={hintOf(d)}
                    disabled={props.disabled}
                    classList={{ mono: d.type === 'target_selector' }}
                  />
                }
              >
                <Match when={d.type === 'number'}>
                  <Field label={labelOf(d)} type="number" inputmode="decimal" value={value()} min={d.min} max={d.max} placeholder={d.default !== undefined ? String(d.default) : ''} onInput={(e) => props.onChange(d.name, e.currentTarget.value)} error={error()} hint={hintOf(d)} disabled={props.disabled} />
                </Match>
                <Match when={d.type === 'boolean'}>
                  <SelectField label={labelOf(d)} value={value()} onChange={(e) => props.onChange(d.name, e.currentTarget.value)} error={error()} disabled={props.disabled}>
                    <option value="">{d.default !== undefined ? `Job default (${String(d.default)})` : 'Not set'}</option>
                    <option value="true" selected={value() === 'true'}>
                      true
                    </option>
                    <option value="false" selected={value() === 'false'}>
                      false
                    </option>
                  </SelectField>
                </Match>
                <Match when={d.type === 'choice'}>
                  <SelectField label={labelOf(d)} value={value()} onChange={(e) => props.onChange(d.name, e.currentTarget.value)} error={error()} disabled={props.disabled}>
                    <option value="">{d.default !== undefined ? `Job default (${String(d.default)})` : 'Not set'}</option>
                    <For each={d.choices ?? []}>{(c) => <option value={c} selected={value() === c}>{c}</option>}</For>
                  </SelectField>
                </Match>
                <Match when={d.type === 'secret'}>
                  <Field
                    label={labelOf(d)}
                    type="password"
                    autocomplete="new-password"
                    value={value() === SECRET_MASK ? '' : value()}
                    placeholder={props.storedSecrets.has(d.name) ? 'Stored — type to replace' : ''}
                    onInput={(e) => props.onChange(d.name, e.currentTarget.value)}
                    error={error()}
                    hint={props.storedSecrets.has(d.name) ? 'A value is stored (sealed). Leave empty to keep it.' : 'Sealed when saved; never shown again.'}
                    disabled={props.disabled}
                  />
                </Match>
              </Switch>
            )
          }}
        </For>
      </div>
    </Show>
  )
}

/** The parameters to send: only names with a value; an untouched stored secret as `****`. */
export function parametersToSend(defs: ParameterDef[], values: Record<string, string>, storedSecrets: Set<string>): Record<string, string> {
  const out: Record<string, string> = {}
  const known = new Set(defs.map((d) => d.name))
  for (const [name, value] of Object.entries(values)) {
    if (!known.has(name)) continue
    if (value !== '' && value !== SECRET_MASK) out[name] = value
    else if (storedSecrets.has(name)) out[name] = SECRET_MASK
  }
  for (const name of storedSecrets) if (known.has(name) && !(name in out) && (values[name] ?? '') === '') out[name] = SECRET_MASK
  return out
}
