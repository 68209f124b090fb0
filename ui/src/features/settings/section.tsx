import { Show, type JSX } from 'solid-js'

/** A settings card: its own heading, form, errors and outcome. */
export function Section(props: { id: string; title: string; intro?: string; badge?: JSX.Element; children: JSX.Element }) {
  return (
    <section class="card settings-section" id={props.id} aria-labelledby={`${props.id}-title`}>
      <div class="section-head">
        <h2 id={`${props.id}-title`}>{props.title}</h2>
        {props.badge}
      </div>
      <Show when={props.intro}>
        <p class="hint section-intro">{props.intro}</p>
      </Show>
      {props.children}
    </section>
  )
}

/** "Saved." next to the button, announced politely. */
export function SavedNote(props: { when: boolean; text?: string }) {
  return (
    <p class="saved" role="status">
      {props.when ? (props.text ?? 'Saved.') : ''}
    </p>
  )
}
