import { createEffect, createUniqueId, onCleanup, Show, type JSX } from 'solid-js'

/*
 * A modal dialog on the native <dialog>: showModal() makes the rest of the page inert (focus stays
 * inside), Escape closes it, and focus returns to what had it before it opened.
 */

interface Props {
  open: boolean
  title: string
  onClose: () => void
  children: JSX.Element
  footer?: JSX.Element
  class?: string
}

export function Dialog(props: Props) {
  let el!: HTMLDialogElement
  let opener: Element | null = null
  const titleId = createUniqueId()
  createEffect(() => {
    if (props.open && !el.open) {
      opener = document.activeElement
      el.showModal()
      // The first field, else the first button: where a keyboard user starts.
      const first = el.querySelector<HTMLElement>('.dialog-body input, .dialog-body select, .dialog-body textarea') ?? el.querySelector<HTMLElement>('button')
      first?.focus()
    } else if (!props.open && el.open) el.close()
  })
  const restore = () => {
    if (opener instanceof HTMLElement && opener.isConnected) opener.focus()
    opener = null
  }
  onCleanup(() => {
    if (el?.open) el.close()
  })
  return (
    <dialog
      ref={el}
      class={`dialog ${props.class ?? ''}`}
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault()
        props.onClose()
      }}
      onClose={() => {
        restore()
        if (props.open) props.onClose()
      }}
    >
      <div class="dialog-head">
        <h2 id={titleId}>{props.title}</h2>
        <button type="button" class="button small dialog-close" aria-label="Close" onClick={() => props.onClose()}>
          ✕
        </button>
      </div>
      <Show when={props.open}>
        <div class="dialog-body">{props.children}</div>
        <Show when={props.footer}>
          <div class="dialog-foot">{props.footer}</div>
        </Show>
      </Show>
    </dialog>
  )
}
