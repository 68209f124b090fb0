import { createSignal, createUniqueId, Show, splitProps, type JSX } from 'solid-js'
import { fieldErrors } from '../api.ts'

/*
 * Forms show the server's own validation: a 400's details name fields by JSON path, and each
 * field shows the message for its path under the control (aria-describedby links them).
 */

/** Submitting state, the error of the last attempt and its per-field messages. */
export function createSubmit<T>(action: () => Promise<T>) {
  const [pending, setPending] = createSignal(false)
  const [error, setError] = createSignal<unknown>(null)
  const errors = () => fieldErrors(error())
  const submit = async (e?: Event): Promise<T | undefined> => {
    e?.preventDefault()
    if (pending()) return undefined
    setPending(true)
    setError(null)
    try {
      return await action()
    } catch (err) {
      setError(err)
      return undefined
    } finally {
      setPending(false)
    }
  }
  return { submit, pending, error, errors, clear: () => setError(null) }
}

type InputProps = JSX.InputHTMLAttributes<HTMLInputElement> & { label: string; error?: string | undefined; hint?: string }

/** A labelled input with its hint and its server-side error. */
export function Field(props: InputProps) {
  const [own, rest] = splitProps(props, ['label', 'error', 'hint', 'id'])
  const id = own.id ?? createUniqueId()
  return (
    <div class="field" classList={{ invalid: !!own.error }}>
      <label for={id}>{own.label}</label>
      <input id={id} aria-invalid={own.error ? 'true' : undefined} aria-describedby={own.error || own.hint ? `${id}-note` : undefined} {...rest} />
      <Show when={own.error || own.hint}>
        <p id={`${id}-note`} class={own.error ? 'field-error' : 'hint'}>
          {own.error ?? own.hint}
        </p>
      </Show>
    </div>
  )
}

type SelectProps = JSX.SelectHTMLAttributes<HTMLSelectElement> & { label: string; error?: string | undefined; children: JSX.Element }

export function SelectField(props: SelectProps) {
  const [own, rest] = splitProps(props, ['label', 'error', 'id', 'children'])
  const id = own.id ?? createUniqueId()
  return (
    <div class="field" classList={{ invalid: !!own.error }}>
      <label for={id}>{own.label}</label>
      <select id={id} aria-invalid={own.error ? 'true' : undefined} aria-describedby={own.error ? `${id}-note` : undefined} {...rest}>
        {own.children}
      </select>
      <Show when={own.error}>
        <p id={`${id}-note`} class="field-error">
          {own.error}
        </p>
      </Show>
    </div>
  )
}

type AreaProps = JSX.TextareaHTMLAttributes<HTMLTextAreaElement> & { label: string; error?: string | undefined; hint?: string }

export function TextAreaField(props: AreaProps) {
  const [own, rest] = splitProps(props, ['label', 'error', 'hint', 'id'])
  const id = own.id ?? createUniqueId()
  return (
    <div class="field" classList={{ invalid: !!own.error }}>
      <label for={id}>{own.label}</label>
      <textarea id={id} aria-invalid={own.error ? 'true' : undefined} aria-describedby={own.error || own.hint ? `${id}-note` : undefined} {...rest} />
      <Show when={own.error || own.hint}>
        <p id={`${id}-note`} class={own.error ? 'field-error' : 'hint'}>
          {own.error ?? own.hint}
        </p>
      </Show>
    </div>
  )
}
