import { createUniqueId, onCleanup, onMount, Show, type JSX } from 'solid-js'
import './kit.css'

/*
 * A modal dialog on the native <dialog>: showModal() makes the rest of the page inert (focus stays
 * inside), Escape closes it, and focus goes back to whatever opened it. Mount it to open it
 * (`<Show when={open()}><Dialog …/></Show>`), unmount it to close it.
 */

export interface DialogProps {
  title: string
  /** Escape, the close button and a click on the backdrop all call this. */
  onClose: () => void
  children: JSX.Element
  /** `drawer`: a panel from the right edge (details); `modal` (default): centred. */
  variant?: 'modal' | 'drawer'
  subtitle?: JSX.Element
  /** `alertdialog` for confirmations. */
  role?: 'dialog' | 'alertdialog'
  /** Wider centred dialog (forms with two columns). */
  wide?: boolean
  /** Where focus goes on close when the opener is gone (its row was re-rendered). */
  returnFocus?: () => HTMLElement | null | undefined
}

export function Dialog(props: DialogProps) {
  let el!: HTMLDialogElement
  const titleId = createUniqueId()
  const describedBy = createUniqueId()
  let closed = false
  // Captured before the dialog takes focus.
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null
  onMount(() => {
    // Normally attached by now; if the surrounding view is still being inserted, wait a frame.
    if (!el.isConnected) return void requestAnimationFrame(() => el.isConnected && open())
    open()
  })
  const open = () => {
    el.showModal()
    // The dialog's own choice of first focus (a field, or Cancel in a confirmation) over the close button.
    el.querySelector<HTMLElement>('[data-autofocus]')?.focus()
  }
  onCleanup(() => {
    closed = true
    if (el.open) el.close()
    const back = opener?.isConnected ? opener : props.returnFocus?.()
    back?.focus()
  })
  return (
    <dialog
      ref={el}
      class={`dialog dialog-${props.variant ?? 'modal'}`}
      classList={{ 'dialog-wide': !!props.wide }}
      role={props.role === 'alertdialog' ? 'alertdialog' : undefined}
      aria-labelledby={titleId}
      aria-describedby={props.subtitle ? describedBy : undefined}
      aria-modal="true"
      onCancel={(e) => {
        e.preventDefault()
        props.onClose()
      }}
      // Closed by the browser itself (not by unmounting): tell the owner.
      onClose={() => {
        if (!closed) props.onClose()
      }}
      onClick={(e) => {
        if (e.target === el) props.onClose()
      }}
    >
      <div class="dialog-inner">
        <header class="dialog-header">
          <div class="dialog-heading">
            <h2 id={titleId}>{props.title}</h2>
            <Show when={props.subtitle}>
              <p id={describedBy} class="subtitle">
                {props.subtitle}
              </p>
            </Show>
          </div>
          <button type="button" class="button small dialog-close" aria-label="Close" onClick={() => props.onClose()}>
            <span aria-hidden="true">✕</span>
          </button>
        </header>
        <div class="dialog-body">{props.children}</div>
      </div>
    </dialog>
  )
}

export interface ConfirmProps {
  title: string
  /** What will happen, in a sentence or two. */
  children: JSX.Element
  /** The confirming button's text: the action itself ("Revoke token"), never "OK". */
  confirm: string
  danger?: boolean
  pending?: boolean
  onConfirm: () => void
  onCancel: () => void
  /** Shown above the buttons when the action failed. */
  error?: JSX.Element
}

/** "Are you sure?" — Cancel has the first focus, so Enter on an accidental open does nothing harmful. */
export function ConfirmDialog(props: ConfirmProps) {
  return (
    <Dialog title={props.title} onClose={props.onCancel} role="alertdialog">
      <div class="confirm-text">{props.children}</div>
      {props.error}
      <div class="form-actions">
        <button type="button" class="button" data-autofocus onClick={() => props.onCancel()}>
          Cancel
        </button>
        <button type="button" class="button" classList={{ danger: !!props.danger, primary: !props.danger }} disabled={props.pending} onClick={() => props.onConfirm()}>
          {props.confirm}
        </button>
      </div>
    </Dialog>
  )
}
