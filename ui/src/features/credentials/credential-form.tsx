import { A, useNavigate, useParams } from '@solidjs/router'
import { createMemo, createResource, createSignal, createUniqueId, For, Index, Match, Show, Switch } from 'solid-js'
import { createStore } from 'solid-js/store'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { createSubmit, Field, SelectField, TextAreaField } from '../../components/form.tsx'
import { Loaded } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { can } from '../../session.ts'
import { messagesUnder } from '../targets/parts.tsx'
import { createCredential, getCredential, TYPE_LABELS, updateCredential, type Credential, type CredentialInput, type CredentialType } from './data.ts'
import { isSecret, SPECS, VARIANT, type FieldSpec, type Values } from './fields.ts'
import '../targets/targets.css'

/*
 * Create (pick a type, then its fields) or edit a credential. Secrets are write-only: never shown,
 * empty on edit with "leave empty to keep"; an optional stored secret can be removed explicitly.
 */

const TYPES = Object.keys(TYPE_LABELS) as CredentialType[]

export function NewCredentialPage() {
  return (
    <Show when={can('admin')} fallback={<p>Creating credentials needs the admin role.</p>}>
      <CredentialForm />
    </Show>
  )
}

export function EditCredentialPage() {
  const params = useParams<{ id: string }>()
  const [credential, { refetch }] = createResource(() => params.id, getCredential)
  return (
    <Show when={can('admin')} fallback={<p>Editing credentials needs the admin role.</p>}>
      <Loaded resource={credential} what="the credential" onRetry={() => void refetch()}>
        {(c) => <CredentialForm existing={c} />}
      </Loaded>
    </Show>
  )
}

function initialValues(type: CredentialType, existing?: Credential): Values {
  const v: Values = {}
  for (const spec of SPECS[type] as FieldSpec[]) {
    if (isSecret(spec.kind)) v[spec.name] = ''
    else if (existing && existing[spec.name] !== undefined && existing[spec.name] !== null) v[spec.name] = String(existing[spec.name])
    else v[spec.name] = spec.initial ?? ''
  }
  return v
}

interface HeaderRow {
  name: string
  value: string
}

function CredentialForm(props: { existing?: Credential }) {
  const navigate = useNavigate()
  const editing = () => !!props.existing
  const [type, setType] = createSignal<CredentialType>(props.existing?.type ?? 'ssh_key')
  const [name, setName] = createSignal(props.existing?.name ?? '')
  const [description, setDescription] = createSignal(props.existing?.description ?? '')
  const [values, setValues] = createStore<Values>(initialValues(type(), props.existing))
  const [headers, setHeaders] = createStore<HeaderRow[]>([{ name: '', value: '' }])
  const [cleared, setCleared] = createStore<Record<string, boolean>>({})
  let formEl!: HTMLFormElement

  const chooseType = (t: CredentialType) => {
    setType(t)
    setValues(initialValues(t))
    save.clear()
    setMissing({})
  }
  const specs = createMemo(() => (SPECS[type()] as FieldSpec[]).filter((s) => !s.when || s.when(values)))
  const has = (field: string) => props.existing?.[`has_${field}`] === true
  const variant = () => VARIANT[type()]
  const variantChanged = () => {
    const f = variant()
    return !!(f && props.existing && values[f] !== String(props.existing[f] ?? ''))
  }
  /** Secrets must be given again when they are not stored (new credential, or a switched scheme). */
  const keepsSecret = (field: string) => editing() && has(field) && !variantChanged()

  const body = (): Record<string, unknown> => {
    const out: Record<string, unknown> = { name: name().trim(), description: description().trim() || null }
    if (!editing()) out.type = type()
    for (const spec of specs()) {
      const raw = values[spec.name] ?? ''
      if (spec.kind === 'headers') {
        const rows = headers.filter((h) => h.name.trim() || h.value)
        if (rows.length) out.headers = Object.fromEntries(rows.map((h) => [h.name.trim(), h.value]))
        else if (cleared.headers) out.headers = null
        continue
      }
      if (isSecret(spec.kind)) {
        if (raw !== '') out[spec.name] = raw
        else if (cleared[spec.name]) out[spec.name] = null
        continue
      }
      if (raw.trim() === '') {
        // An emptied optional field is cleared on edit; an empty one is not sent.
        if (editing() && spec.optional && props.existing?.[spec.name] !== undefined) out[spec.name] = null
        continue
      }
      out[spec.name] = spec.kind === 'number' && /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : spec.kind === 'pem' ? raw : raw.trim()
    }
    return out
  }

  /** The one rule checked here: a field the form shows as required is not empty (the server checks the rest). */
  const [missing, setMissing] = createSignal<Record<string, string>>({})
  const findMissing = (): Record<string, string> => {
    const out: Record<string, string> = {}
    if (!name().trim()) out.name = 'required'
    for (const spec of specs()) {
      if (spec.optional || (isSecret(spec.kind) && keepsSecret(spec.name))) continue
      const empty = spec.kind === 'headers' ? !headers.some((h) => h.name.trim()) : (values[spec.name] ?? '') === ''
      if (empty) out[spec.name] = 'required'
    }
    return out
  }
  const save = createSubmit(async () => {
    const absent = findMissing()
    setMissing(absent)
    if (Object.keys(absent).length) return
    const saved = props.existing ? await updateCredential(props.existing.id, body()) : await createCredential(body() as CredentialInput)
    navigate(`/credentials/${saved.id}`, { state: { saved: props.existing ? 'Credential saved.' : 'Credential created.' } })
  })
  const errors = createMemo(() => ({ ...save.errors(), ...missing() }))
  const submit = async (e: Event) => {
    await save.submit(e)
    queueMicrotask(() => formEl.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus())
  }
  const title = () => (props.existing ? `Edit ${props.existing.name}` : 'New credential')

  return (
    <div class="targets-area">
      <PageHeader title={title()} subtitle={props.existing ? TYPE_LABELS[props.existing.type] : 'A secret the controller uses to reach hosts and services.'} />
      <form ref={formEl} class="credential-form" onSubmit={(e) => void submit(e)} novalidate autocomplete="off" aria-label={title()}>
        <Show when={save.error()}>{(err) => <ErrorPanel title="Could not save the credential" error={err()} />}</Show>
        <section class="card" aria-labelledby="cf-what">
          <h2 id="cf-what">Credential</h2>
          <div class="form-grid">
            <Field label="Name" required value={name()} onInput={(e) => setName(e.currentTarget.value)} error={errors().name} hint="How targets and steps refer to it" />
            <Show
              when={!editing()}
              fallback={
                <div class="field">
                  <span class="field-label-static">Type</span>
                  <p class="static-value">{TYPE_LABELS[type()]} (cannot change)</p>
                </div>
              }
            >
              <SelectField label="Type" value={type()} onChange={(e) => chooseType(e.currentTarget.value as CredentialType)} error={errors().type}>
                <For each={TYPES}>{(t) => <option value={t}>{TYPE_LABELS[t]}</option>}</For>
              </SelectField>
            </Show>
          </div>
          <TextAreaField label="Description" rows={2} value={description()} onInput={(e) => setDescription(e.currentTarget.value)} error={errors().description} />
        </section>

        <section class="card" aria-labelledby="cf-fields">
          <h2 id="cf-fields">{TYPE_LABELS[type()]}</h2>
          <Show when={editing()}>
            <p class="secret-note">Secrets are never shown. Leave a secret empty to keep the stored one.</p>
          </Show>
          <Show when={variantChanged()}>
            <p class="warning-line" role="note">
              Changing the {variant()} replaces every field of this credential: give the new secrets too.
            </p>
          </Show>
          <For each={specs()}>
            {(spec) => (
              <Switch>
                <Match when={spec.kind === 'headers'}>
                  <HeadersInput rows={headers} setRows={setHeaders} error={messagesUnder(errors(), 'headers')} stored={keepsSecret('headers')} names={(props.existing?.header_names as string[] | undefined) ?? []} />
                  <Show when={keepsSecret('headers')}>
                    <ClearSecret label="Remove the stored headers" checked={!!cleared.headers} onChange={(v) => setCleared('headers', v)} />
                  </Show>
                </Match>
                <Match when={spec.kind === 'select'}>
                  <SelectField label={spec.label} value={values[spec.name]} onChange={(e) => setValues(spec.name, e.currentTarget.value)} error={errors()[spec.name]} hint={spec.hint}>
                    <For each={spec.options}>{([v, l]) => <option value={v}>{l}</option>}</For>
                  </SelectField>
                </Match>
                <Match when={spec.kind === 'pem' || spec.kind === 'secret-area'}>
                  <TextAreaField
                    label={spec.label + (spec.optional ? ' (optional)' : '')}
                    rows={spec.kind === 'secret-area' ? 5 : 4}
                    required={!spec.optional && !keepsSecret(spec.name)}
                    spellcheck={false}
                    autocomplete="off"
                    placeholder={spec.placeholder}
                    value={values[spec.name]}
                    onInput={(e) => setValues(spec.name, e.currentTarget.value)}
                    error={errors()[spec.name]}
                    hint={spec.kind === 'secret-area' && keepsSecret(spec.name) ? `Stored — leave empty to keep. ${spec.hint ?? ''}`.trim() : spec.hint}
                    classList={{ 'secret-input': spec.kind === 'secret-area' }}
                  />
                  <Show when={spec.file}>
                    <FileLoad label={`Load ${/^[A-Z]{2}/.test(spec.label) ? spec.label : spec.label.charAt(0).toLowerCase() + spec.label.slice(1)} from a file`} onLoad={(text) => setValues(spec.name, text)} />
                  </Show>
                </Match>
                <Match when={spec.kind === 'secret'}>
                  <Field
                    label={spec.label + (spec.optional ? ' (optional)' : '')}
                    type="password"
                    autocomplete="new-password"
                    required={!spec.optional && !keepsSecret(spec.name)}
                    value={values[spec.name]}
                    onInput={(e) => setValues(spec.name, e.currentTarget.value)}
                    error={errors()[spec.name]}
                    hint={keepsSecret(spec.name) ? `Stored — leave empty to keep${spec.hint ? `. ${spec.hint}` : ''}` : spec.hint}
                  />
                  <Show when={spec.optional && keepsSecret(spec.name)}>
                    <ClearSecret label={`Remove the stored ${spec.label.toLowerCase()}`} checked={!!cleared[spec.name]} onChange={(v) => setCleared(spec.name, v)} />
                  </Show>
                </Match>
                <Match when={spec.kind === 'text' || spec.kind === 'number'}>
                  <Field
                    label={spec.label + (spec.optional ? ' (optional)' : '')}
                    type={spec.kind === 'number' ? 'number' : 'text'}
                    required={!spec.optional}
                    inputmode={spec.kind === 'number' ? 'numeric' : undefined}
                    autocomplete={spec.autocomplete ?? 'off'}
                    placeholder={spec.placeholder}
                    value={values[spec.name]}
                    onInput={(e) => setValues(spec.name, e.currentTarget.value)}
                    error={errors()[spec.name]}
                    hint={spec.hint}
                  />
                </Match>
              </Switch>
            )}
          </For>
        </section>

        <div class="form-actions">
          <A href={props.existing ? `/credentials/${props.existing.id}` : '/credentials'} class="button">
            Cancel
          </A>
          <button type="submit" class="button primary" disabled={save.pending()}>
            {save.pending() ? 'Saving…' : props.existing ? 'Save changes' : 'Create credential'}
          </button>
        </div>
      </form>
    </div>
  )
}

function ClearSecret(props: { label: string; checked: boolean; onChange: (v: boolean) => void }) {
  return (
    <label class="check">
      <input type="checkbox" checked={props.checked} onChange={(e) => props.onChange(e.currentTarget.checked)} /> {props.label}
    </label>
  )
}

/** Reads a key or certificate file into its field (it never leaves the browser except in the save). */
function FileLoad(props: { label: string; onLoad: (text: string) => void }) {
  const id = createUniqueId()
  return (
    <div class="file-load">
      <label for={id}>{props.label}</label>{' '}
      <input
        id={id}
        type="file"
        onChange={async (e) => {
          const input = e.currentTarget
          const file = input.files?.[0]
          if (file) props.onLoad(await file.text())
          input.value = ''
        }}
      />
    </div>
  )
}

function HeadersInput(props: { rows: HeaderRow[]; setRows: (fn: (rows: HeaderRow[]) => HeaderRow[]) => void; error: string | undefined; stored: boolean; names: string[] }) {
  const update = (i: number, patch: Partial<HeaderRow>) => props.setRows((rows) => rows.map((r, j) => (j === i ? { ...r, ...patch } : r)))
  return (
    <fieldset class="field header-fields">
      <legend>Headers</legend>
      <Show when={props.stored}>
        <p class="hint">
          Stored: {props.names.join(', ') || 'headers'} — leave empty to keep them; any header given here replaces the stored set.
        </p>
      </Show>
      <Show when={props.error}>{(m) => <p class="field-error">{m()}</p>}</Show>
      <ul class="header-rows">
        <Index each={props.rows}>
          {(row, i) => (
            <li class="tag-row">
              <Field label={`Header ${i + 1} name`} value={row().name} onInput={(e) => update(i, { name: e.currentTarget.value })} autocomplete="off" />
              <Field label={`Header ${i + 1} value`} type="password" autocomplete="new-password" value={row().value} onInput={(e) => update(i, { value: e.currentTarget.value })} />
              <button type="button" class="button small" aria-label={`Remove header ${i + 1}`} onClick={() => props.setRows((rows) => rows.filter((_, j) => j !== i))}>
                Remove
              </button>
            </li>
          )}
        </Index>
      </ul>
      <button type="button" class="button small" onClick={() => props.setRows((rows) => [...rows, { name: '', value: '' }])}>
        Add header
      </button>
    </fieldset>
  )
}
