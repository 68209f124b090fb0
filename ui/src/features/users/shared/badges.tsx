import type { JSX } from 'solid-js'

export type Tone = 'good' | 'bad' | 'neutral' | 'accent'

/** A small status pill (the page-level `.badge` is larger, with a dot). */
export function Pill(props: { tone: Tone; children: JSX.Element; title?: string }) {
  return (
    <span class={`pill pill-${props.tone}`} title={props.title}>
      {props.children}
    </span>
  )
}
