import { A } from '@solidjs/router'
import { createUniqueId, Show, splitProps, type JSX } from 'solid-js'
import { fieldErrors } from '../api.ts'
import { createAction } from './action.ts'
import { ErrorPanel } from './error-panel.tsx'

/*
 * Forms show the server's own validation: a 400's details name fields by JSON path, and each
 * field shows the message for its path under the control (aria-describedby links them).
 */

/** Submitting state, the error of the last attempt and its per-field messages. */
export function createSubmit<T>(action: () => Promise<T>) {
  const { run, pending, error, clear } = createAction(action)
  const submit = (e?: Event): Promise<T | undefined> => {
    e?.preventDefault()
    return run()
  }
  return { submit, pending, error, errors: () => fieldErrors(error()), clear }
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

/** A form's foot: why the last save failed, "Saved" once it worked, a way back, and the submit button. */
export function SaveActions(props: { label: string; pending: boolean; saved: boolean; error: unknown; errorTitle: string; back?: { href: string; label: string } | undefined }) {
  return (
    <>
      <Show when={props.error}>{(err) => <ErrorPanel title={props.errorTitle} error={err()} />}</Show>
      <div class="form-actions">
        <Show when={props.saved}>
          <span class="saved" role="status">
            Saved
          </span>
        </Show>
        <Show when={props.back}>
          {(back) => (
            <A href={back().href} class="button">
              {back().label}
            </A>
          )}
        </Show>
        <button type="submit" class="button primary" disabled={props.pending}>
          {props.pending ? 'Saving…' : props.label}
        </button>
      </div>
    </>
  )
}
