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

type A11y = { id: string; readonly 'aria-invalid': 'true' | undefined; readonly 'aria-describedby': string | undefined }

/** Label, control and the note under it (the server's error, else a hint), linked for screen readers. */
function Labelled(props: { id: string; label: string; error?: string | undefined; hint?: string | undefined; control: (a11y: A11y) => JSX.Element }) {
  const note = () => props.error ?? props.hint
  // Getters: the control's spread reads them reactively, so the control itself is created once.
  const a11y: A11y = {
    id: props.id,
    get 'aria-invalid'() {
      return props.error ? 'true' : undefined
    },
    get 'aria-describedby'() {
      return note() ? `${props.id}-note` : undefined
    },
  }
  const control = props.control(a11y)
  return (
    <div class="field" classList={{ invalid: !!props.error }}>
      <label for={props.id}>{props.label}</label>
      {control}
      <Show when={note()}>
        <p id={`${props.id}-note`} class={props.error ? 'field-error' : 'hint'}>
          {note()}
        </p>
      </Show>
    </div>
  )
}

type InputProps = JSX.InputHTMLAttributes<HTMLInputElement> & { label: string; error?: string | undefined; hint?: string }

/** A labelled input with its hint and its server-side error. */
export function Field(props: InputProps) {
  const [own, rest] = splitProps(props, ['label', 'error', 'hint', 'id'])
  const id = own.id ?? createUniqueId()
  return <Labelled id={id} label={own.label} error={own.error} hint={own.hint} control={(a11y) => <input {...a11y} {...rest} />} />
}

type SelectProps = JSX.SelectHTMLAttributes<HTMLSelectElement> & { label: string; error?: string | undefined; hint?: string; children: JSX.Element }

export function SelectField(props: SelectProps) {
  const [own, rest] = splitProps(props, ['label', 'error', 'hint', 'id', 'children'])
  const id = own.id ?? createUniqueId()
  return (
    <Labelled
      id={id}
      label={own.label}
      error={own.error}
      hint={own.hint}
      control={(a11y) => (
        <select {...a11y} {...rest}>
          {own.children}
        </select>
      )}
    />
  )
}

type AreaProps = JSX.TextareaHTMLAttributes<HTMLTextAreaElement> & { label: string; error?: string | undefined; hint?: string }

export function TextAreaField(props: AreaProps) {
  const [own, rest] = splitProps(props, ['label', 'error', 'hint', 'id'])
  const id = own.id ?? createUniqueId()
  return <Labelled id={id} label={own.label} error={own.error} hint={own.hint} control={(a11y) => <textarea {...a11y} {...rest} />} />
}
