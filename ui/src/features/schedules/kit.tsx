import { A, useLocation } from '@solidjs/router'
import { createEffect, createUniqueId, For, onCleanup, Show, splitProps, type JSX } from 'solid-js'
import { allZones, browserZone } from './time.ts'

/*
 * Small pieces the schedules and notifications pages share: section tabs, a confirmation dialog,
 * a time-zone field and status badges.
 */

export interface SubNavItem {
  href: string
  label: string
  /** Whether the item is the current section (default: the path is href or below it). */
  current?: (path: string) => boolean
}

/** Links between a feature's sections, the current one marked (aria-current) and highlighted. */
export function SubNav(props: { label: string; items: SubNavItem[] }) {
  const location = useLocation()
  const isCurrent = (item: SubNavItem) => (item.current ? item.current(location.pathname) : location.pathname === item.href || location.pathname.startsWith(`${item.href}/`))
  return (
    <nav class="subnav" aria-label={props.label}>
      <For each={props.items}>
        {(item) => (
          <A href={item.href} class="subnav-link" activeClass="" inactiveClass="" classList={{ current: isCurrent(item) }} aria-current={isCurrent(item) ? 'page' : undefined}>
            {item.label}
          </A>
        )}
      </For>
    </nav>
  )
}

interface ConfirmProps {
  open: boolean
  title: string
  children: JSX.Element
  confirmLabel: string
  danger?: boolean
  pending?: boolean
  onConfirm: () => void
  onClose: () => void
}

/**
 * A modal question (native <dialog>: focus stays inside, Escape closes it); focus goes back to
 * whatever had it when the dialog opened.
 */
export function ConfirmDialog(props: ConfirmProps) {
  let dialog!: HTMLDialogElement
  let opener: Element | null = null
  const titleId = createUniqueId()
  createEffect(() => {
    if (props.open && !dialog.open) {
      opener = document.activeElement
      dialog.showModal()
    } else if (!props.open && dialog.open) {
      dialog.close()
    }
  })
  const restore = () => {
    if (opener instanceof HTMLElement && opener.isConnected) opener.focus()
    opener = null
  }
  onCleanup(() => dialog?.open && dialog.close())
  return (
    <dialog
      ref={dialog}
      class="confirm-dialog"
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault()
        props.onClose()
      }}
      onClose={restore}
    >
      <h2 id={titleId}>{props.title}</h2>
      <div class="confirm-body">{props.children}</div>
      <div class="form-actions">
        <button type="button" class="button" onClick={() => props.onClose()} autofocus>
          Cancel
        </button>
        <button type="button" class={`button ${props.danger ? 'danger' : 'primary'}`} disabled={props.pending} onClick={() => props.onConfirm()}>
          {props.confirmLabel}
        </button>
      </div>
    </dialog>
  )
}

type ZoneProps = JSX.InputHTMLAttributes<HTMLInputElement> & { label?: string; error?: string | undefined; value: string; onZone: (zone: string) => void }

/** An IANA time zone: free text with the browser's zones as suggestions, and a shortcut to the browser's own. */
export function ZoneField(props: ZoneProps) {
  const [own, rest] = splitProps(props, ['label', 'error', 'value', 'onZone', 'id'])
  const id = own.id ?? createUniqueId()
  const listId = `${id}-zones`
  const mine = browserZone()
  return (
    <div class="field" classList={{ invalid: !!own.error }}>
      <label for={id}>{own.label ?? 'Time zone'}</label>
      <div class="zone-row">
        <input
          id={id}
          list={listId}
          autocomplete="off"
          spellcheck={false}
          value={own.value}
          onInput={(e) => own.onZone(e.currentTarget.value)}
          aria-invalid={own.error ? 'true' : undefined}
          aria-describedby={`${id}-note`}
          {...rest}
        />
        <Show when={own.value !== mine}>
          <button type="button" class="button small" onClick={() => own.onZone(mine)} title={`Use ${mine}`}>
            Use {mine}
          </button>
        </Show>
      </div>
      <datalist id={listId}>
        <For each={allZones()}>{(z) => <option value={z} />}</For>
      </datalist>
      <p id={`${id}-note`} class={own.error ? 'field-error' : 'hint'}>
        {own.error ?? 'An IANA zone such as UTC, Europe/Berlin or America/New_York.'}
      </p>
    </div>
  )
}

export type Tone = 'good' | 'bad' | 'neutral' | 'warn'

/** A status word in a coloured pill. */
export function StatusBadge(props: { tone: Tone; children: JSX.Element; title?: string }) {
  return (
    <span class={`badge small-badge tone-${props.tone}`} title={props.title}>
      {props.children}
    </span>
  )
}

const GOOD = new Set(['succeeded', 'fired', 'delivered', 'ok'])
const BAD = new Set(['failed', 'timed_out', 'agent_lost', 'system_error', 'interrupted', 'missed', 'dead', 'error'])
const WARN = new Set(['skipped', 'queued', 'deferred', 'pending', 'sending', 'held', 'running', 'cancelled', 'rate_limited', 'batched'])

export function toneOf(status: string | null | undefined): Tone {
  if (!status) return 'neutral'
  if (GOOD.has(status)) return 'good'
  if (BAD.has(status)) return 'bad'
  if (WARN.has(status)) return 'warn'
  return 'neutral'
}

/** `timed_out` → `timed out`. */
export const words = (s: string) => s.replace(/_/g, ' ')
