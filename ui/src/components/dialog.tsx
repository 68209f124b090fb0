import { createSignal, createUniqueId, onCleanup, onMount, Show, type JSX } from 'solid-js'
import { createAction } from './action.ts'
import { ErrorPanel } from './error-panel.tsx'
import './dialog.css'

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
  /** Wider centred dialog (forms with two columns, tables). */
  wide?: boolean
  /** Buttons that stay in view under a long body. */
  footer?: JSX.Element
  class?: string
  /** While an action is under way, Escape and the backdrop leave the dialog open. */
  busy?: boolean
  /** Where focus goes on close when the opener is gone (its row was re-rendered). */
  returnFocus?: () => HTMLElement | null | undefined
}

/** First focus: the dialog's own choice (`data-autofocus`), else its first field, else the browser's. */
const FIRST_FOCUS = '[data-autofocus], .dialog-body :is(input, select, textarea):not([type=hidden], [disabled])'

export function Dialog(props: DialogProps) {
  let el!: HTMLDialogElement
  const titleId = createUniqueId()
  const describedBy = createUniqueId()
  let closed = false
  // Captured before the dialog takes focus.
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null
  const open = () => {
    el.showModal()
    el.querySelector<HTMLElement>(FIRST_FOCUS)?.focus()
  }
  onMount(() => {
    // Normally attached by now; if the surrounding view is still being inserted, wait a frame.
    if (!el.isConnected) return void requestAnimationFrame(() => el.isConnected && open())
    open()
  })
  onCleanup(() => {
    closed = true
    if (el.open) el.close()
    const back = opener?.isConnected ? opener : props.returnFocus?.()
    back?.focus()
  })
  const close = () => {
    if (!props.busy) props.onClose()
  }
  return (
    <dialog
      ref={el}
      class={`dialog dialog-${props.variant ?? 'modal'}${props.wide ? ' dialog-wide' : ''}${props.class ? ` ${props.class}` : ''}`}
      role={props.role === 'alertdialog' ? 'alertdialog' : undefined}
      aria-labelledby={titleId}
      aria-describedby={props.subtitle ? describedBy : undefined}
      aria-modal="true"
      onCancel={(e) => {
        e.preventDefault()
        close()
      }}
      // Closed by the browser itself (not by unmounting): tell the owner.
      onClose={() => {
        if (!closed) props.onClose()
      }}
      onClick={(e) => {
        if (e.target === el) close()
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
          <button type="button" class="button small dialog-close" aria-label="Close" disabled={props.busy} onClick={() => props.onClose()}>
            <span aria-hidden="true">✕</span>
          </button>
        </header>
        <div class="dialog-body">{props.children}</div>
        <Show when={props.footer}>
          <div class="dialog-footer">{props.footer}</div>
        </Show>
      </div>
    </dialog>
  )
}

export interface ConfirmProps {
  title: string
  /** What will happen, in a sentence or two. */
  children: JSX.Element
  /** The confirming button's text: the action itself ("Revoke token"), never "OK". */
  confirmLabel: string
  danger?: boolean
  pending?: boolean
  onConfirm: () => void
  onCancel: () => void
  /** The last attempt's failure, shown above the buttons; the dialog stays open to try again. */
  error?: unknown
  errorTitle?: string
}

/** "Are you sure?" — Cancel has the first focus, so Enter on an accidental open does nothing harmful. */
export function ConfirmDialog(props: ConfirmProps) {
  return (
    <Dialog title={props.title} onClose={props.onCancel} role="alertdialog" busy={props.pending}>
      <div class="confirm-text">{props.children}</div>
      <Show when={props.error}>{(err) => <ErrorPanel title={props.errorTitle ?? `${props.confirmLabel} failed`} error={err()} />}</Show>
      <div class="form-actions">
        <button type="button" class="button" data-autofocus disabled={props.pending} onClick={() => props.onCancel()}>
          Cancel
        </button>
        <button type="button" class="button" classList={{ danger: !!props.danger, primary: !props.danger }} disabled={props.pending} onClick={() => props.onConfirm()}>
          {props.pending ? 'Working…' : props.confirmLabel}
        </button>
      </div>
    </Dialog>
  )
}

/** A button that asks first, then runs `action` (a delete, a revoke); a failure keeps the dialog open with the error. */
export function ConfirmButton(props: Omit<ConfirmProps, 'pending' | 'onConfirm' | 'onCancel' | 'error'> & { label: string; action: () => Promise<unknown> }) {
  const [asking, setAsking] = createSignal(false)
  const action = createAction(async () => {
    await props.action()
    setAsking(false)
  })
  return (
    <>
      <button
        type="button"
        class="button"
        classList={{ danger: !!props.danger }}
        disabled={action.pending()}
        onClick={() => {
          action.clear()
          setAsking(true)
        }}
      >
        {props.label}
      </button>
      <Show when={asking()}>
        <ConfirmDialog
          title={props.title}
          confirmLabel={props.confirmLabel}
          danger={props.danger}
          pending={action.pending()}
          error={action.error()}
          errorTitle={props.errorTitle}
          onConfirm={() => void action.run()}
          onCancel={() => setAsking(false)}
        >
          {props.children}
        </ConfirmDialog>
      </Show>
    </>
  )
}
