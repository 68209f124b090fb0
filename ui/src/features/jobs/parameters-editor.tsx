import { For, Index, Show } from 'solid-js'
import { Field, SelectField } from '../../components/form.tsx'
import { CheckboxField } from './field-control.tsx'
import { errorUnder, isObject, splitList, withField, type JsonObject } from './model.ts'
import { PARAMETER_TYPES } from './step-types.ts'

/*
 * The job's typed parameters: name, type, label, default, required, and what the type allows
 * (choices for `choice`, a pattern for string and secret, a range for number). A secret has no
 * default: the server refuses one, since it would be stored in the job.
 */

interface Props {
  value: unknown
  errors: Record<string, string>
  onChange: (parameters: JsonObject[]) => void
}

export function ParametersEditor(props: Props) {
  const list = (): JsonObject[] => (Array.isArray(props.value) ? props.value.map((p) => (isObject(p) ? p : {})) : [])
  const set = (i: number, key: string, v: unknown) => props.onChange(list().map((p, j) => (j === i ? withField(p, key, v) : p)))
  const err = (i: number, field: string) => errorUnder(props.errors, `parameters[${i}].${field}`) ?? (field === 'name' ? props.errors[`parameters[${i}]`] : undefined)
  const str = (v: unknown) => (v === undefined || v === null ? '' : String(v))

  return (
    <div class="parameters">
      <Show when={props.value !== undefined && props.value !== null && !Array.isArray(props.value)}>
        <p class="hint">The parameters are written as a map of defaults; edit them in the JSON view, or add one here to turn them into a list.</p>
      </Show>
      <Show when={props.errors.parameters}>
        <p class="field-error">{props.errors.parameters}</p>
      </Show>
      <Show when={list().length === 0}>
        <p class="hint">No parameters. A parameter is asked for when the job runs, and read in steps as {'{{ params.name }}'}.</p>
      </Show>
      <ol class="param-list" aria-label="Parameters">
        <Index each={list()}>
          {(p, i) => {
            const type = (): string => { const t = p().type; return typeof t === 'string' ? t : 'string' }
            const choices = (): string[] => { const c = p().choices; return Array.isArray(c) ? c.map(String) : [] }
            const pid = (f: string) => `f-param-${i}-${f}`
            return (
              <li class="param-card">
                <div role="group" aria-label={`Parameter ${i + 1}${p().name ? `: ${str(p().name)}` : ''}`}>
                  <div class="form-grid">
                    <Field id={pid('name')} label="Name (required)" aria-required="true" class="mono-input" value={str(p().name)} error={err(i, 'name')} onInput={(e) => set(i, 'name', e.currentTarget.value)} />
                    <SelectField id={pid('type')} label="Type" value={type()} error={err(i, 'type')} onChange={(e) => set(i, 'type', e.currentTarget.value)}>
                      <For each={PARAMETER_TYPES}>
                        {(t) => (
                          <option value={t} selected={type() === t}>
                            {t}
                          </option>
                        )}
                      </For>
                    </SelectField>
                    <Field id={pid('label')} label="Label" value={str(p().label)} error={err(i, 'label')} onInput={(e) => set(i, 'label', e.currentTarget.value || undefined)} />
                    <DefaultField id={pid('default')} type={type()} param={p()} error={err(i, 'default')} onChange={(v) => set(i, 'default', v)} />
                    <Show when={type() === 'choice'}>
                      <Field id={pid('choices')} label="Choices (comma-separated)" value={choices().join(', ')} error={err(i, 'choices')} onChange={(e) => set(i, 'choices', splitList(e.currentTarget.value).length ? splitList(e.currentTarget.value) : undefined)} />
                    </Show>
                    <Show when={type() === 'string' || type() === 'secret'}>
                      <Field id={pid('pattern')} label="Pattern (regular expression)" class="mono-input" value={str(p().pattern)} error={err(i, 'pattern')} onInput={(e) => set(i, 'pattern', e.currentTarget.value || undefined)} />
                    </Show>
                    <Show when={type() === 'number'}>
                      <Field id={pid('min')} label="Minimum" type="number" step="any" value={str(p().min)} error={err(i, 'min')} onChange={(e) => set(i, 'min', e.currentTarget.value === '' ? undefined : Number(e.currentTarget.value))} />
                      <Field id={pid('max')} label="Maximum" type="number" step="any" value={str(p().max)} error={err(i, 'max')} onChange={(e) => set(i, 'max', e.currentTarget.value === '' ? undefined : Number(e.currentTarget.value))} />
                    </Show>
                    <Field id={pid('description')} label="Description" value={str(p().description)} error={err(i, 'description')} onInput={(e) => set(i, 'description', e.currentTarget.value || undefined)} />
                  </div>
                  <div class="param-foot">
                    <CheckboxField id={pid('required')} label="Required" checked={p().required === true} error={err(i, 'required')} onChange={(v) => set(i, 'required', v)} />
                    <button type="button" class="button small danger" onClick={() => props.onChange(list().filter((_, j) => j !== i))}>
                      Remove parameter
                    </button>
                  </div>
                </div>
              </li>
            )
          }}
        </Index>
      </ol>
      <button type="button" class="button" onClick={() => props.onChange([...list(), { name: '', type: 'string' }])}>
        Add parameter
      </button>
    </div>
  )
}

function DefaultField(props: { id: string; type: string; param: JsonObject; error: string | undefined; onChange: (v: unknown) => void }) {
  const v = () => props.param.default
  return (
    <Show
      when={props.type !== 'secret'}
      fallback={<Field id={props.id} label="Default" disabled value="" hint="A secret has no default" error={props.error} />}
    >
      <Show
        when={props.type === 'boolean' || props.type === 'choice'}
        fallback={
          <Field
            id={props.id}
            label="Default"
            type={props.type === 'number' ? 'number' : 'text'}
            step={props.type === 'number' ? 'any' : undefined}
            value={v() === undefined ? '' : String(v())}
            error={props.error}
            onChange={(e) => {
              const t = e.currentTarget.value
              props.onChange(t === '' ? undefined : props.type === 'number' && Number.isFinite(Number(t)) ? Number(t) : t)
            }}
          />
        }
      >
        <SelectField id={props.id} label="Default" value={v() === undefined ? '' : String(v())} error={props.error} onChange={(e) => {
          const t = e.currentTarget.value
          props.onChange(t === '' ? undefined : props.type === 'boolean' ? t === 'true' : t)
        }}>
          <option value="" selected={v() === undefined}>
            (none)
          </option>
          <For each={props.type === 'boolean' ? ['true', 'false'] : Array.isArray(props.param.choices) ? props.param.choices.map(String) : []}>
            {(o) => (
              <option value={o} selected={String(v()) === o}>
                {o}
              </option>
            )}
          </For>
        </SelectField>
      </Show>
    </Show>
  )
}
