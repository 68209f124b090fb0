import { createEffect, createUniqueId, onCleanup, Show, type JSX } from 'solid-js'

/*
 * A modal dialog on the native <dialog>: showModal() makes the rest of the page inert (focus stays
 * inside) and Escape closes it; focus returns to whatever opened it.
 */

interface DialogProps {
  open: boolean
  title: string
  onClose: () => void
  children: JSX.Element
  /** Wider body for tables and forms. */
  wide?: boolean
}

export function Dialog(props: DialogProps) {
  let el!: HTMLDialogElement
  let opener: HTMLElement | null = null
  const titleId = createUniqueId()
  createEffect(() => {
    if (props.open && !el.open) {
      opener = document.activeElement instanceof HTMLElement ? document.activeElement : null
      el.showModal()
    } else if (!props.open && el.open) {
      el.close()
    }
  })
  onCleanup(() => el.open && el.close())
  return (
    <dialog
      ref={el}
      class="opsc-dialog"
      classList={{ wide: !!props.wide }}
      aria-labelledby={titleId}
      onClose={() => {
        if (props.open) props.onClose()
        opener?.focus()
        opener = null
      }}
    >
      <Show when={props.open}>
        <div class="dialog-head">
          <h2 id={titleId}>{props.title}</h2>
          <button type="button" class="button small" aria-label="Close" onClick={() => props.onClose()}>
            ✕
          </button>
        </div>
        {props.children}
      </Show>
    </dialog>
  )
}

interface ConfirmProps {
  open: boolean
  title: string
  /** What will happen, in words. */
  children: JSX.Element
  confirmLabel: string
  danger?: boolean
  pending?: boolean
  onConfirm: () => void
  onClose: () => void
  /** Shown under the text (e.g. an ErrorPanel after a failed attempt). */
  error?: JSX.Element
}

/** "Are you sure?" with the consequences spelled out; the cancel button has focus first. */
export function ConfirmDialog(props: ConfirmProps) {
  return (
    <Dialog open={props.open} title={props.title} onClose={props.onClose}>
      <div class="dialog-body">{props.children}</div>
      {props.error}
      <div class="form-actions">
        <button type="button" class="button" onClick={() => props.onClose()} autofocus>
          Cancel
        </button>
        <button type="button" class={`button ${props.danger ? 'danger' : 'primary'}`} disabled={props.pending} onClick={() => props.onConfirm()}>
          {props.pending ? 'Working…' : props.confirmLabel}
        </button>
      </div>
    </Dialog>
  )
}
