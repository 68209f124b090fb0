import { splitProps, type JSX } from 'solid-js'

/** `active`: under way or asking for attention (queued, deferred, open now, MFA on). */
export type Tone = 'good' | 'bad' | 'neutral' | 'active'

type BadgeProps = JSX.HTMLAttributes<HTMLSpanElement> & { tone: Tone; children: JSX.Element; large?: boolean }

/** A status word in a coloured pill: small in tables and lists; `large`, with a dot, for a page's own status. */
export function Badge(props: BadgeProps) {
  const [own, rest] = splitProps(props, ['tone', 'large', 'children', 'class'])
  return (
    <span {...rest} class={`badge${own.large ? '' : ' small'} tone-${own.tone}${own.class ? ` ${own.class}` : ''}`}>
      {own.children}
    </span>
  )
}

const GOOD = new Set(['succeeded', 'fired', 'delivered', 'ok'])
const BAD = new Set(['failed', 'timed_out', 'agent_lost', 'system_error', 'interrupted', 'missed', 'dead', 'error'])
const ACTIVE = new Set(['running', 'deferred', 'pending', 'sending', 'held', 'rate_limited', 'batched'])

/** The tone of a run, fire or delivery status (as the runs pages show run statuses: queued, skipped, cancelled are neutral). */
export function toneOf(status: string | null | undefined): Tone {
  if (!status) return 'neutral'
  if (GOOD.has(status)) return 'good'
  if (BAD.has(status)) return 'bad'
  if (ACTIVE.has(status)) return 'active'
  return 'neutral'
}

/** `timed_out` → `timed out`. */
export const words = (s: string) => s.replace(/_/g, ' ')
