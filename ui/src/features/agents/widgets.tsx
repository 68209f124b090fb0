import { createEffect, createSignal, createUniqueId, For, onCleanup, Show, type JSX } from 'solid-js'
import type { AgentStatus } from './agents-api.ts'

const STATUS: Record<AgentStatus, { label: string; tone: 'good' | 'bad' | 'neutral' }> = {
  online: { label: 'Online', tone: 'good' },
  offline: { label: 'Offline', tone: 'bad' },
  revoked: { label: 'Revoked', tone: 'neutral' },
}

export function AgentStatusBadge(props: { status: AgentStatus }) {
  return (
    <span class={`badge small-badge tone-${STATUS[props.status].tone}`} data-status={props.status}>
      {STATUS[props.status].label}
    </span>
  )
}

/**
 * A command to paste on a host, with a copy button. Without clipboard access (an http page, a
 * refused permission) the command is selected instead, for Ctrl+C.
 */
export function CommandBlock(props: { label: string; step?: number; command: string; testId?: string }) {
  let pre!: HTMLPreElement
  const id = createUniqueId()
  const [note, setNote] = createSignal('')
  let timer: ReturnType<typeof setTimeout> | undefined
  onCleanup(() => clearTimeout(timer))
  const flash = (text: string) => {
    setNote(text)
    clearTimeout(timer)
    timer = setTimeout(() => setNote(''), 4_000)
  }
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.command)
      flash('Copied')
    } catch {
      const range = document.createRange()
      range.selectNodeContents(pre)
      const sel = window.getSelection()
      sel?.removeAllRanges()
      sel?.addRange(range)
      flash('Selected: press Ctrl+C (⌘C) to copy')
    }
  }
  return (
    <div class="command-block">
      <div class="command-head">
        <span id={id} class="command-label">
          <Show when={props.step}>{(n) => <span class="command-step">{n()}. </span>}</Show>
          {props.label}
        </span>
        <span class="command-note" role="status">
          {note()}
        </span>
        <button type="button" class="button small" aria-label={`Copy: ${props.label}`} onClick={() => void copy()}>
          Copy
        </button>
      </div>
      <pre ref={pre} class="command" aria-labelledby={id} data-testid={props.testId} tabindex="0">
        <code>
          <For each={props.command.split(' ')}>
            {(word, i) => (
              <>
                {i() > 0 ? ' ' : ''}
                <span class={word.length > 24 ? 'word long' : 'word'}>{word}</span>
              </>
            )}
          </For>
        </code>
      </pre>
    </div>
  )
}

/**
 * A modal confirmation: the native <dialog> traps focus and closes on Escape; focus returns to
 * what opened it. `onConfirm` may fail: its error is shown in the dialog, which stays open.
 */
export function ConfirmDialog(props: {
  open: boolean
  title: string
  confirmLabel: string
  danger?: boolean
  pending?: boolean
  error?: JSX.Element
  onConfirm: () => void
  onClose: () => void
  children: JSX.Element
}) {
  let dialog!: HTMLDialogElement
  let opener: Element | null = null
  const titleId = createUniqueId()
  const open = () => {
    if (dialog.open) return
    opener = document.activeElement
    dialog.showModal()
  }
  const restore = () => {
    if (opener instanceof HTMLElement && opener.isConnected) opener.focus()
    opener = null
  }
  createEffect(() => {
    if (props.open) open()
    else if (dialog.open) dialog.close()
  })
  return (
    <>
      <dialog
        ref={dialog}
        class="confirm-dialog"
        aria-labelledby={titleId}
        onClose={() => {
          restore()
          if (props.open) props.onClose()
        }}
        onCancel={(e) => {
          if (props.pending) e.preventDefault()
        }}
      >
        <form
          method="dialog"
          onSubmit={(e) => {
            e.preventDefault()
            props.onConfirm()
          }}
        >
          <h2 id={titleId}>{props.title}</h2>
          <div class="dialog-body">{props.children}</div>
          <Show when={props.error}>{props.error}</Show>
          <div class="form-actions">
            <button type="button" class="button" onClick={() => dialog.close()} disabled={props.pending}>
              Cancel
            </button>
            <button type="submit" class={`button ${props.danger ? 'danger' : 'primary'}`} disabled={props.pending}>
              {props.pending ? 'Working…' : props.confirmLabel}
            </button>
          </div>
        </form>
      </dialog>
    </>
  )
}
